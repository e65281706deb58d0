"""Checks on rendered pages."""
import re

_ASSET = re.compile(r'<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)="([^"]*)"', re.IGNORECASE)


def external_assets(html):
    """Addresses of scripts, styles and images that are not served by us: absolute or protocol-relative
    URLs (a CDN among them). Searching the page for "cdn" also matches random CSRF tokens."""
    return [url for url in _ASSET.findall(html) if not url.startswith("/") or url.startswith("//")]
