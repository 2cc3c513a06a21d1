"""The benchmark's people and the grown database.

The people who sign in are made with the models (one Argon2id hash and one encrypted seed,
reused: every row is a valid account, and seeding does not spend minutes hashing). The crowd
around them — a million users, ten thousand companies with an active integration each, a hundred
thousand Microsoft connections — is made by PostgreSQL itself with INSERT … SELECT
generate_series, in well under a minute."""

import time
import uuid

import pyotp
from django.db import connection, transaction

PASSWORD = "bench password 4711"
MICROSOFT_TENANT = "7f3c2a9e-1d4b-4e8a-9c6f-2b5d8e1a3c47"  # Contoso in the emulator's demo directory
MICROSOFT_PASSWORD = "Entra-demo-1"


def people(password_people, microsoft_people):
    """Password + TOTP people of a company without a licence (so no offer interrupts them), and
    Microsoft people of Contoso Ltd, connected. Returns (password people, Microsoft people) as
    (username, seed) and (upn, oid) lists."""
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from tenantlink import demo
    from tenantlink.accounts.models import TOTPDevice, User
    from tenantlink.companies.models import Company
    from tenantlink.lib import crypto
    from tenantlink.sso.models import Connection, Integration

    demo.seed()
    seed = pyotp.random_base32()
    hashed, encrypted = make_password(PASSWORD), crypto.encrypt(seed)
    with transaction.atomic():
        company = Company.objects.create(name="Bench Password Ltd")
        users = User.objects.bulk_create(
            User(username=f"pw{n}", display_name=f"Password Person {n}", company=company, password=hashed)
            for n in range(password_people)
        )
        TOTPDevice.objects.bulk_create(TOTPDevice(user=user, encrypted_seed=encrypted) for user in users)
        contoso = Company.objects.get(name="Contoso Ltd")
        integration = Integration.objects.create(
            company=contoso,
            tenant_id=MICROSOFT_TENANT,
            display_name="Contoso",
            status=Integration.Status.ACTIVE,
            consent_completed_at=timezone.now(),
            last_verified_at=timezone.now(),
        )
        microsoft = []
        for n in range(microsoft_people):
            oid = str(uuid.uuid4())
            user = User.objects.create(
                username=f"ms{n}", display_name=f"Microsoft Person {n}", company=contoso, password=hashed
            )
            TOTPDevice.objects.create(user=user, encrypted_seed=encrypted)
            upn = f"ms{n}@contoso.onmicrosoft.com"
            Connection.objects.create(
                user=user, integration=integration, tid=MICROSOFT_TENANT, oid=oid, display_name=upn, username=upn
            )
            microsoft.append((upn, oid))
    return [(user.username, seed) for user in users], microsoft


def _account(username, **fields):
    from tenantlink.accounts.models import TOTPDevice, User
    from tenantlink.lib import crypto

    seed = pyotp.random_base32()
    user = User.objects.create_user(username, PASSWORD, **fields)
    TOTPDevice.objects.create(user=user, encrypted_seed=crypto.encrypt(seed))
    return (username, seed)


def administrator():
    """An administrator of the first grown company, whose user list the growth rows read."""
    from tenantlink.accounts.models import User
    from tenantlink.companies.models import Company

    company = Company.objects.filter(name__startswith="Grown ").order_by("id").first()
    return _account("boss", company=company, role=User.Role.ADMINISTRATOR)


def operator():
    """Operator staff, for the operator admin's pages."""
    return _account("otto", is_staff=True, is_superuser=True)  # not the demo's oscar, whom the seed makes too


GROW = """
-- Companies, each with an active integration of a tenant of its own.
INSERT INTO companies_company (name, created_at)
SELECT 'Grown Company ' || n, now()
FROM generate_series((SELECT count(*) FROM companies_company WHERE name LIKE 'Grown %%') + 1, %(companies)s) AS n;

INSERT INTO sso_integration (company_id, tenant_id, display_name, status, failure_reason, failure_code,
                             created_at, consent_completed_at, last_verified_at)
SELECT c.id, gen_random_uuid(), c.name, 'active', '', '', now(), now(), now()
FROM companies_company c
WHERE c.name LIKE 'Grown %%' AND NOT EXISTS (SELECT 1 FROM sso_integration i WHERE i.company_id = c.id);

-- Users, spread evenly over the grown companies.
WITH grown AS (SELECT array_agg(id ORDER BY id) AS ids FROM companies_company WHERE name LIKE 'Grown %%'),
     counted AS (SELECT count(*) AS users, (SELECT count(*) FROM accounts_user WHERE username LIKE 'grown%%') AS done
                 FROM accounts_user)
INSERT INTO accounts_user (password, is_superuser, username, display_name, email, company_id, role, is_active,
                           is_staff, must_change_password, time_zone, session_generation, date_joined)
SELECT '!', false, 'grown' || n, 'Grown User ' || n, 'grown' || n || '@example.com',
       grown.ids[1 + n %% array_length(grown.ids, 1)], 'member', true, false, false, '', 0, now()
FROM grown, counted, generate_series(counted.done + 1, counted.done + %(users)s - counted.users) AS n;

-- Microsoft connections for about every ninth grown user (enough of them for the target), in their company's tenant.
INSERT INTO sso_connection (user_id, integration_id, tid, oid, display_name, username, connected_at)
SELECT u.id, i.id, i.tenant_id, gen_random_uuid(), u.display_name, u.username || '@grown.example', now()
FROM accounts_user u JOIN sso_integration i ON i.company_id = u.company_id
WHERE u.username LIKE 'grown%%' AND u.id %% 9 = 0
  AND NOT EXISTS (SELECT 1 FROM sso_connection c WHERE c.user_id = u.id)
ORDER BY u.id
LIMIT GREATEST(0, %(connections)s - (SELECT count(*) FROM sso_connection));
"""


def grow(users, companies, connections):
    """Add grown companies, users and connections until there are this many of each."""
    with connection.cursor() as cursor:
        cursor.execute(GROW, {"users": users, "companies": companies, "connections": connections})
        cursor.execute("ANALYZE")
        cursor.execute(
            "SELECT (SELECT count(*) FROM accounts_user), (SELECT count(*) FROM companies_company),"
            " (SELECT count(*) FROM sso_connection)"
        )
        return cursor.fetchone()


SIGNINS = """
-- For every grown user without sign-ins yet, `per_user` successful sign-ins at random moments of
-- the last 30 days, each as complete_signin records it; with Microsoft for the connected ones.
-- Written in time order, as the portal writes its log.
INSERT INTO audit_auditevent (created_at, actor_id, actor_label, company_id, action, target_user_id, target_label,
                              client_ip, user_agent, outcome, details)
SELECT at, id, username, company_id, 'signin.succeeded', id, username, '192.0.2.1', 'Mozilla/5.0 (bench)', 'success',
       details
FROM (SELECT now() - random() * interval '30 days' AS at, u.id, u.username, u.company_id,
             CASE WHEN c.id IS NULL THEN '{"method": "totp"}' ELSE '{"method": "microsoft"}' END::jsonb AS details
      FROM accounts_user u LEFT JOIN sso_connection c ON c.user_id = u.id, generate_series(1, %(per_user)s)
      WHERE u.username LIKE 'grown%%'
        AND NOT EXISTS (SELECT 1 FROM audit_auditevent e
                        WHERE e.target_user_id = u.id AND e.action = 'signin.succeeded')) AS signins
ORDER BY at;
-- Sign-ins are never written into the past, so quarter hours counted before would stay counted
-- without these: forget them, as before the first count of a month of log.
DELETE FROM audit_signinslot;
"""


def signins(per_user):
    """Seed sign-ins (SIGNINS), then count them into quarter hours as the daily purge_expired
    does. Returns how many successful sign-ins the audit log holds and the seconds of that count."""
    from django.utils import timezone

    from tenantlink.audit.models import SigninSlot

    with connection.cursor() as cursor:
        cursor.execute(SIGNINS, {"per_user": per_user})
        # As autovacuum would soon after: not during the measurements.
        cursor.execute("VACUUM ANALYZE audit_auditevent")
        cursor.execute("SELECT count(*) FROM audit_auditevent WHERE action = 'signin.succeeded'")
        count = cursor.fetchone()[0]
    started = time.monotonic()
    SigninSlot.objects.fill(timezone.now())
    return count, time.monotonic() - started


def connection_sample(count):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tid, oid FROM sso_connection ORDER BY random() LIMIT %s", [count])
        return [(str(tid), str(oid)) for tid, oid in cursor.fetchall()]
