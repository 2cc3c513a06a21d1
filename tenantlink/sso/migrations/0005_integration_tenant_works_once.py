# A tenant works (active or disabled) for one company only, and a user signs in with Microsoft
# only through an integration of their own company. Existing data is brought in line first; see
# the README's release notes.

from django.conf import settings
from django.db import migrations, models
from django.db.models import F

WORKING = ["active", "disabled"]


def bring_data_in_line(apps, schema_editor):
    Integration = apps.get_model("sso", "Integration")
    Connection = apps.get_model("sso", "Connection")
    # Connections through another company's integration (users moved by an operator) can sign
    # nobody in any more, but would hold their (tid, oid).
    Connection.objects.exclude(integration__company=F("user__company")).delete()
    # Of a tenant working for several companies, the one connected first keeps it.
    seen = set()
    for integration in Integration.objects.filter(status__in=WORKING).order_by("tenant_id", "created_at", "id"):
        if integration.tenant_id in seen:
            Integration.objects.filter(pk=integration.pk).update(status="failed", failure_reason="tenant_taken")
        seen.add(integration.tenant_id)


class Migration(migrations.Migration):
    dependencies = [
        ("companies", "0002_microsoft_required"),
        ("sso", "0004_integration_leaver_lease_owner"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(bring_data_in_line, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="integration",
            constraint=models.UniqueConstraint(
                models.F("tenant_id"), condition=models.Q(status__in=WORKING), name="sso_integration_tenant_works_once"
            ),
        ),
    ]
