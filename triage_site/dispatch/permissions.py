"""Who may see and act on requests: members of the `dispatcher` group, supervisors and staff."""
from functools import wraps

from django.core.exceptions import PermissionDenied

DISPATCHER_GROUP = "dispatcher"
SUPERVISOR_GROUP = "supervisor"


def is_dispatcher(user):
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return user.groups.filter(name__in=(DISPATCHER_GROUP, SUPERVISOR_GROUP)).exists()


def dispatcher_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_dispatcher(request.user):
            raise PermissionDenied("Only dispatchers may see requests.")
        return view(request, *args, **kwargs)

    return wrapper
