"""Users for the bad-input and security tests: an outsider (signed in, no group), a supervisor, a superuser."""
import pytest
from django.contrib.auth.models import Group

PASSWORD = "correct horse battery"


@pytest.fixture
def outsider(django_user_model):
    return django_user_model.objects.create_user("visitor", password=PASSWORD)


@pytest.fixture
def supervisor(django_user_model):
    user = django_user_model.objects.create_user("supervisor1", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    return user


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.invalid", PASSWORD)


@pytest.fixture
def supervisor_client(client, supervisor):
    client.force_login(supervisor)
    return client
