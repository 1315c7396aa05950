"""manage.py ensure_admin: make sure someone can log in on a first run."""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.roles import ALL_ROLES, assign_role

PASSWORD_FILE_NAME = "admin_password.txt"


class Command(BaseCommand):
    help = "Create the superuser 'admin' (all roles) if there is no superuser, and say how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="Where the site will answer (for the message).")

    def handle(self, *args, username, url, **options):
        User = get_user_model()
        password_file = settings.VAR_DIR / PASSWORD_FILE_NAME
        existing = User.objects.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            hint = f" (first password in {password_file})" if password_file.exists() else ""
            self.stdout.write(
                f"An admin account exists: log in at {url} as {existing.get_username()}{hint}. "
                f"Forgot the password? python manage.py changepassword {existing.get_username()}"
            )
            return
        if User.objects.filter(username=username).exists():
            raise CommandError(
                f"A user {username!r} exists but is not a superuser; run: python manage.py createsuperuser"
            )
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, email="", password=password)
        for role in ALL_ROLES:
            assign_role(user, role)
        if not os.environ.get("DJANGO_SUPERUSER_PASSWORD"):
            # Only a generated password is written down; one from the environment is the person's own.
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(password + "\n")
            password_file.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(f"Log in at {url} as {username} / {password}"))
