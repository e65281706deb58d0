"""Project middleware."""
from django.conf import settings
from django.utils.cache import add_never_cache_headers
from django.utils.deprecation import MiddlewareMixin


class NeverCacheForSignedInUsers(MiddlewareMixin):
    """Pages for a signed-in user show patient data: the browser must not keep them (on a shared computer the
    back button or the disk cache would show them to the next person). Static files never get here:
    ServeStaticMiddleware answers them earlier."""

    def process_response(self, request, response):
        forbid_caching_for_signed_in_users(request, response)
        return response


def forbid_caching_for_signed_in_users(request, response):
    """Cache-Control: no-store (with no-cache, must-revalidate, private) unless the response chose its own."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and not response.has_header("Cache-Control"):
        add_never_cache_headers(response)


class ContentSecurityPolicy(MiddlewareMixin):
    """settings.TRIAGE_CONTENT_SECURITY_POLICY on every response that does not set its own."""

    def process_response(self, request, response):
        policy = settings.TRIAGE_CONTENT_SECURITY_POLICY
        if policy and not response.has_header("Content-Security-Policy"):
            response["Content-Security-Policy"] = policy
        return response
