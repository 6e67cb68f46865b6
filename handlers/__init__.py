"""The Telegram adapter (python-telegram-bot): Update <-> Inbound/Reply, delivery, jobs. Thin by design."""
