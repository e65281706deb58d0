"""Create a sign-in for the dispatcher board (used by `make run` for a first account)."""
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from triage_site.permissions import DISPATCHER_GROUP, SUPERVISOR_GROUP


class Command(BaseCommand):
    help = "Create a dispatcher account (and the dispatcher and supervisor groups) if it does not exist."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password-file", type=Path,
                            help="Write a newly generated password here; read it from here if the user exists.")
        parser.add_argument("--supervisor", action="store_true", help="Also put the user in the supervisor group.")

    def handle(self, *args, username, password_file, supervisor, **options):
        dispatchers, _ = Group.objects.get_or_create(name=DISPATCHER_GROUP)
        supervisors, _ = Group.objects.get_or_create(name=SUPERVISOR_GROUP)
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username=username)
        user.groups.add(dispatchers)
        if supervisor:
            user.groups.add(supervisors)
        if not created:
            hint = f" (password in {password_file})" if password_file and password_file.exists() else ""
            self.stdout.write(f"Sign in as {username}{hint}.")
            return
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.save()
        if password_file:
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        self.stdout.write(f"Created dispatcher {username!r} with password {password}")
