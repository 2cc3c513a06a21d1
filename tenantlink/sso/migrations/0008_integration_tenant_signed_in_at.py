# An integration that has never worked starts working only after someone of its tenant signed in
# there for it (consent.verify). Additive: old code ignores the column and the new purpose.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sso", "0007_integration_leaver_requested_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="integration",
            name="tenant_signed_in_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="tenant sign-in"),
        ),
        migrations.AlterField(
            model_name="pendingauthorization",
            name="purpose",
            field=models.CharField(
                choices=[
                    ("consent", "Admin consent"),
                    ("connect", "Connect a Microsoft account"),
                    ("signin", "Sign in with Microsoft"),
                    ("leaver_consent", "Admin consent for the leaver check"),
                    ("tenant_signin", "Sign in at the tenant of a new integration"),
                ],
                max_length=20,
            ),
        ),
    ]
