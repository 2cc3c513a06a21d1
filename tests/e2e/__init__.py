"""The portal and the Entra emulator as real processes, driven over HTTP and through Chromium."""
