"""Licence dates from before there were dates to check (0005): a licence ending after 9998 (an
operator's "for ever") could not be shown east of UTC, and the admin would refuse to save one
outside the range unchanged. Moved to the nearest date within it; none is otherwise changed."""

import datetime

from django.db import migrations

FIRST = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
LAST = datetime.datetime(9999, 1, 1, tzinfo=datetime.UTC)


def within_range(apps, schema_editor):
    Licence = apps.get_model("companies", "Licence")
    for field in ("valid_from", "valid_until"):
        Licence.objects.filter(**{f"{field}__lt": FIRST}).update(**{field: FIRST})
        Licence.objects.filter(**{f"{field}__gt": LAST}).update(**{field: LAST})


class Migration(migrations.Migration):
    dependencies = [("companies", "0005_alter_licence_valid_from_alter_licence_valid_until")]

    operations = [migrations.RunPython(within_range, migrations.RunPython.noop)]
