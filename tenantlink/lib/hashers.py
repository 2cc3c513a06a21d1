from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    """Argon2id with OWASP's recommended minimum: 19 MiB of memory, 2 iterations, 1 lane.

    Django's defaults are different and change between releases; pinning them here keeps
    sign-in cost predictable, and Django rehashes stored passwords at the next sign-in when
    these numbers change.
    """

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
