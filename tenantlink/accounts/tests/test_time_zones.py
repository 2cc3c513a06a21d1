"""The time zone in My Profile → Settings: each zone once, by its current name; a user whose
stored zone is an old name still sees it chosen and can save the form unchanged; "Portal default"
says which zone that is."""

import re

OLD_AND_CURRENT_NAMES = [
    ("Europe/Kiev", "Europe/Kyiv"),
    ("Asia/Calcutta", "Asia/Kolkata"),
    ("Africa/Asmera", "Africa/Asmara"),
    ("America/Atka", "America/Adak"),
]


def time_zone_options(page):
    """(value, label, selected) of each option of the time-zone list."""
    select = re.search(r'<select name="time_zone".*?</select>', page, re.DOTALL)[0]
    return [
        (value, label, bool(selected))
        for value, selected, label in re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select)
    ]


def test_each_zone_is_offered_once_by_its_current_name(member_client):
    values = [value for value, _, _ in time_zone_options(member_client.get("/profile/settings/").content.decode())]

    for old, current in OLD_AND_CURRENT_NAMES:
        assert current in values and old not in values
    assert "Europe/Stockholm" in values and "Europe/Helsinki" in values and "Europe/Mariehamn" in values
    assert len(values) == len(set(values)) < 450


def test_portal_default_names_its_zone(member_client, settings):
    settings.DEFAULT_USER_TIME_ZONE = "America/New_York"

    options = time_zone_options(member_client.get("/profile/settings/").content.decode())

    assert options[0] == ("", "Portal default (America/New York)", True)


def test_a_user_with_an_old_zone_name_sees_it_chosen_and_saves_the_form_unchanged(member_client, member):
    member.time_zone = "Europe/Kiev"
    member.save(update_fields=["time_zone"])

    options = time_zone_options(member_client.get("/profile/settings/").content.decode())
    assert [value for value, _, selected in options if selected] == ["Europe/Kiev"]
    assert "Europe/Kyiv" in [value for value, _, _ in options]

    response = member_client.post("/profile/settings/", {"language": "", "time_zone": "Europe/Kiev"})

    assert response.status_code == 302
    member.refresh_from_db()
    assert member.time_zone == "Europe/Kiev"


def test_an_old_zone_name_is_offered_only_to_the_user_who_has_it(member_client, admin):
    admin.time_zone = "Asia/Calcutta"
    admin.save(update_fields=["time_zone"])

    values = [value for value, _, _ in time_zone_options(member_client.get("/profile/settings/").content.decode())]
    assert "Asia/Calcutta" not in values
    response = member_client.post("/profile/settings/", {"language": "", "time_zone": "Asia/Calcutta"})
    assert response.status_code == 200  # refused: not one of the choices
