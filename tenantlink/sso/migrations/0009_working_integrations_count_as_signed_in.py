# Integrations that work now (active, or disabled by their administrator) were confirmed by the
# rule of their time and keep working. Every other one needs a sign-in at its tenant before it
# works: also one that worked once and failed since, and one a company lost to another (sso.0005).

from django.db import migrations
from django.db.models import F


def count_working_integrations_as_signed_in(apps, schema_editor):
    Integration = apps.get_model("sso", "Integration")
    working = Integration.objects.filter(status__in=["active", "disabled"])
    working.update(tenant_signed_in_at=F("last_verified_at"))
    working.filter(tenant_signed_in_at__isnull=True).update(tenant_signed_in_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("sso", "0008_integration_tenant_signed_in_at"),
    ]

    operations = [
        migrations.RunPython(count_working_integrations_as_signed_in, migrations.RunPython.noop),
    ]
