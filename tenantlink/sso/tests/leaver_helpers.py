"""Steps shared by the leaver check's test modules: a person connected to an account at
Microsoft (answered by FakeMicrosoft), and a run of `manage.py check_leavers`."""

import io
import uuid

from django.core.management import call_command

from tenantlink.sso.models import Connection
from tenantlink.sso.tests.conftest import CONTOSO

BEN = "15550e69-065f-4d2c-b54d-9fd19885ed4c"


def connect(user, integration, fake_microsoft, oid=None, enabled=True):
    oid = oid or str(uuid.uuid4())
    fake_microsoft.accounts[oid] = enabled
    return Connection.objects.create(
        user=user, integration=integration, tid=CONTOSO, oid=oid, username=f"{user.username}@contoso.onmicrosoft.com"
    )


def run():
    out = io.StringIO()
    call_command("check_leavers", stdout=out)
    return out.getvalue()
