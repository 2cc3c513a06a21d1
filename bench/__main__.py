"""`make bench`: how long the sign-in steps take, as a table.

Runs against a throw-away SQLite test database. Argon2id at 19 MiB is meant to be slow; the
numbers show what one sign-in costs a portal process and how many a core can take per second."""

import os
import statistics
import time
import tracemalloc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenantlink.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-secret-key-not-for-production-0123456789")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "q2DA3Ce5nD1c4FZr-dvLJ2C3o8bqSHvDz2VHNS-DHgo=")

import django  # noqa: E402

django.setup()

import pyotp  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def measure(name, function, repeat):
    function()  # warm up
    timings = []
    tracemalloc.start()
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    median = statistics.median(timings)
    return name, repeat, median * 1000, max(timings) * 1000, 1 / median, peak / 1024


def main():
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        from tenantlink.accounts.models import RecoveryCode, TOTPDevice, User
        from tenantlink.companies.models import Company

        company = Company.objects.create(name="Bench Ltd")
        user = User.objects.create_user("bench", "bench password 123", company=company)
        seed = pyotp.random_base32()
        TOTPDevice.enrol(user, seed, step=0)
        device = TOTPDevice.objects.get(user=user)
        step = [TOTPDevice.current_step()]

        def verify_totp():
            # A fresh device state each time, so the replay guard does not refuse the code.
            TOTPDevice.objects.filter(pk=device.pk).update(last_used_step=0)
            device.last_used_step = 0
            assert device.verify(pyotp.TOTP(seed).generate_otp(step[0]))

        client = Client()  # one handler, as in a running process; a new browser each time

        def full_signin():
            TOTPDevice.objects.filter(pk=device.pk).update(last_used_step=0)
            client.cookies.clear()
            client.post("/signin/", {"username": "bench", "password": "bench password 123"})
            response = client.post("/signin/verify/", {"code": pyotp.TOTP(seed).generate_otp(step[0])})
            assert response.status_code == 302 and response.url == "/portal/", response

        rows = [
            measure("password check (Argon2id 19 MiB, t=2)", lambda: user.check_password("bench password 123"), 20),
            measure("TOTP verify with replay guard", verify_totp, 200),
            measure("recovery codes: make 10", lambda: RecoveryCode.replace_for(user), 50),
            measure("full sign-in: password + TOTP pages", full_signin, 20),
        ]
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    header = ("operation", "runs", "median ms", "max ms", "per second", "Python heap peak KiB")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for name, runs, median, worst, rate, peak in rows:
        print(f"{name} | {runs} | {median:.1f} | {worst:.1f} | {rate:.0f} | {peak:.0f}")


if __name__ == "__main__":
    main()
