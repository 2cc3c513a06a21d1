# When a licence last stopped being in force while its row went on (sso.flows.still_usable). A
# licence revoked before this version was interrupted then.

from django.db import migrations, models
from django.db.models import F


def interrupted_when_revoked(apps, schema_editor):
    Licence = apps.get_model("companies", "Licence")
    Licence.objects.filter(revoked_at__isnull=False).update(interrupted_at=F("revoked_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("companies", "0006_licence_dates_within_range"),
    ]

    operations = [
        migrations.AddField(
            model_name="licence",
            name="interrupted_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(interrupted_when_revoked, migrations.RunPython.noop),
    ]
