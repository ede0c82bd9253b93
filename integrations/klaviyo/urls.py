"""The Integrations pages. The OAuth callback has a fixed path, registered
with Klaviyo; the brand it belongs to is found from the state."""

from django.urls import path

from integrations.klaviyo import views

app_name = "klaviyo"

BRAND_PAGE = "brands/<slug:slug>/integrations/klaviyo/"

urlpatterns = [
    path("integrations/", views.brand_list, name="brand-list"),
    path(
        "integrations/klaviyo/oauth/callback",
        views.oauth_callback,
        name="oauth-callback",
    ),
    path(BRAND_PAGE, views.integration, name="integration"),
    path(f"{BRAND_PAGE}connect/", views.connect, name="connect"),
    path(f"{BRAND_PAGE}disconnect/", views.disconnect, name="disconnect"),
    path(f"{BRAND_PAGE}export/", views.export, name="export"),
]
