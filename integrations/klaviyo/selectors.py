"""Read-only queries for the web pages: which brands a user may see and
manage, and their Klaviyo connections."""

from integrations.klaviyo.models import KlaviyoConnection
from integrations.messaging.choices import MembershipRole
from integrations.messaging.models import Brand, BrandMembership


def brands_visible_to(user):
    """The brands ``user`` belongs to; every brand for a superuser."""
    if not user.is_authenticated or not user.is_active:
        return Brand.objects.none()
    if user.is_superuser:
        return Brand.objects.all()
    return Brand.objects.filter(memberships__user=user).distinct()


def brands_with_connections_visible_to(user):
    """``brands_visible_to`` with each brand's connection loaded in the same
    query, for the brand list."""
    return brands_visible_to(user).select_related("klaviyo_connection")


def brand_is_manageable_by(user, brand):
    """Whether ``user`` may connect, disconnect and switch export for
    ``brand``: its admins and superusers."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return (
        BrandMembership.objects.for_user(user)
        .filter(brand=brand, role=MembershipRole.ADMIN)
        .exists()
    )


def brand_connection(brand):
    """The brand's Klaviyo connection, or None."""
    return KlaviyoConnection.objects.filter(brand=brand).first()
