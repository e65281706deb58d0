"""Who may do what, for every app: dispatchers see and submit requests, supervisors also change urgencies.

Staff and superusers count as both. Each check has a view decorator that refuses with a clear message."""
from functools import wraps
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib import auth
from django.core.exceptions import PermissionDenied

DISPATCHER_GROUP = "dispatcher"
SUPERVISOR_GROUP = "supervisor"


def _in_groups(user, names):
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_staff or user.is_superuser or user.groups.filter(name__in=names).exists()


def is_dispatcher(user):
    return _in_groups(user, (DISPATCHER_GROUP, SUPERVISOR_GROUP))


def is_supervisor(user):
    return _in_groups(user, (SUPERVISOR_GROUP,))


def is_still_dispatcher(user_id, session_key=None):
    """Whether an open connection may go on receiving requests, read afresh from the database (the user in a
    socket's scope is the one read when it connected). With a session key, that session must still sign this user
    in, as Django checks it for a page: a sign-out, an expired session or a changed password end it. Without one
    (a consumer mounted without sessions, as some tests do) the user alone is checked. At most three queries."""
    if user_id is None:
        return False
    if session_key is None:
        user = auth.get_user_model()._default_manager.filter(pk=user_id).first()
    else:
        user = auth.get_user(SimpleNamespace(session=_session_store(session_key)))
    return user is not None and user.pk == user_id and is_dispatcher(user)


def _session_store(session_key):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key or None)


def _required(check, message):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


dispatcher_required = _required(
    is_dispatcher, f"Only dispatchers may see requests: this account is not in the {DISPATCHER_GROUP} group. "
                   "Ask a supervisor or the administrator to add you (manage.py create_dispatcher NAME).")
supervisor_required = _required(
    is_supervisor, f"Only supervisors may change urgencies: this account is not in the {SUPERVISOR_GROUP} group. "
                   "Ask the administrator to add you (manage.py create_dispatcher NAME --supervisor).")
