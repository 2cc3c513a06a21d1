# An integration becomes usable only after someone of its tenant signed in there for it (see
# flows.verify). Integrations that have worked before keep working: they were confirmed by the
# rule of their time. Additive: old code ignores the column and the new purpose.

from django.db import migrations, models
from django.db.models import F


def count_earlier_work_as_signed_in(apps, schema_editor):
    Integration = apps.get_model("sso", "Integration")
    Integration.objects.filter(last_verified_at__isnull=False).update(tenant_signed_in_at=F("last_verified_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("sso", "0007_integration_leaver_requested_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="integration",
            name="tenant_signed_in_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="signed in at the tenant at"),
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
        migrations.RunPython(count_earlier_work_as_signed_in, migrations.RunPython.noop),
    ]
