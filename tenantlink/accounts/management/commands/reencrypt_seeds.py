from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from tenantlink.accounts.models import TOTPDevice
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.lib import crypto


class Command(BaseCommand):
    help = (
        "Encrypt every stored authenticator seed with the newest key (the first of "
        "FIELD_ENCRYPTION_KEYS), so that older keys can then be removed. Safe to run again."
    )

    def handle(self, **options):
        done = 0
        # One row at a time, each locked while it is rewritten: a sign-in going on meanwhile
        # (which writes the device's last used step) neither waits long nor is undone.
        for pk in TOTPDevice.objects.values_list("pk", flat=True).iterator():
            with transaction.atomic():
                device = TOTPDevice.objects.select_for_update().filter(pk=pk).first()
                if device is None:
                    continue  # removed meanwhile
                try:
                    device.encrypted_seed = crypto.reencrypt(device.encrypted_seed)
                except ValueError:
                    AuditEvent.objects.record(
                        Action.SEEDS_REENCRYPTED, actor_label="command line", outcome=Outcome.FAILURE, seeds=done
                    )
                    raise CommandError(
                        f"The seed of {device.user.username} cannot be decrypted with any key of "
                        "FIELD_ENCRYPTION_KEYS: put back the key it was encrypted with, then run this again. "
                        f"{done} seeds were re-encrypted before it."
                    ) from None
                device.save(update_fields=["encrypted_seed"])
                done += 1
        AuditEvent.objects.record(Action.SEEDS_REENCRYPTED, actor_label="command line", seeds=done)
        self.stdout.write(
            f"Re-encrypted {done} authenticator seeds with the newest key. Keys after the first in "
            "FIELD_ENCRYPTION_KEYS can be removed once every instance runs with the new list."
        )
