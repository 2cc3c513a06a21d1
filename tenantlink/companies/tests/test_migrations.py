"""Migrations that change data, run from the state before them with data that needs changing."""

import datetime


def test_licence_dates_outside_what_every_time_zone_can_show_are_moved_within(from_state):
    before, after = (
        ("companies", "0005_alter_licence_valid_from_alter_licence_valid_until"),
        (
            "companies",
            "0006_licence_dates_within_range",
        ),
    )
    executor = from_state(before)
    apps = executor.loader.project_state([before]).apps
    Company, Licence = apps.get_model("companies", "Company"), apps.get_model("companies", "Licence")
    company = Company.objects.create(name="Contoso")

    def licence(start, end):
        return Licence.objects.create(company=company, product="sso", valid_from=start, valid_until=end).pk

    utc = datetime.UTC
    for_ever = licence(datetime.datetime(2026, 1, 1, tzinfo=utc), datetime.datetime(9999, 12, 31, 22, 59, tzinfo=utc))
    old = licence(datetime.datetime(1990, 5, 1, tzinfo=utc), datetime.datetime(2030, 1, 1, tzinfo=utc))
    usual = licence(datetime.datetime(2026, 1, 1, tzinfo=utc), datetime.datetime(2027, 1, 1, tzinfo=utc))

    executor.loader.build_graph()
    executor.migrate([after])

    dates = {
        pk: (start.isoformat(), end.isoformat())
        for pk, start, end in Licence.objects.values_list("pk", "valid_from", "valid_until")
    }
    assert dates == {
        for_ever: ("2026-01-01T00:00:00+00:00", "9999-01-01T00:00:00+00:00"),
        old: ("2000-01-01T00:00:00+00:00", "2030-01-01T00:00:00+00:00"),
        usual: ("2026-01-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
    }
