from django.contrib import admin

from integrations.messaging.models import (
    Brand,
    BrandMembership,
    Campaign,
    Customer,
    Message,
    StaffMember,
    Store,
)


class BrandScopedAdmin(admin.ModelAdmin):
    """Shows staff who are not superusers only the rows of their brands.

    ``brand_field`` is the lookup from the model to its Brand; empty for
    Brand itself.
    """

    brand_field = "brand"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        prefix = f"{self.brand_field}__" if self.brand_field else ""
        # One membership per user and brand: the join never repeats a row.
        return queryset.filter(**{f"{prefix}memberships__user": request.user})


class MembershipInline(admin.TabularInline):
    model = BrandMembership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Brand)
class BrandAdmin(BrandScopedAdmin):
    list_display = ["name", "slug", "default_country", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]
    brand_field = ""


@admin.register(Store)
class StoreAdmin(BrandScopedAdmin):
    list_display = ["name", "brand"]
    list_filter = ["brand"]
    search_fields = ["name"]


@admin.register(StaffMember)
class StaffMemberAdmin(BrandScopedAdmin):
    list_display = ["name", "brand", "store"]
    list_filter = ["brand"]
    list_select_related = ["brand", "store"]
    search_fields = ["name"]


@admin.register(Customer)
class CustomerAdmin(BrandScopedAdmin):
    list_display = ["public_id", "full_name", "email", "phone", "brand"]
    list_filter = ["brand"]
    list_select_related = ["brand"]
    search_fields = ["=public_id", "email", "phone", "last_name"]
    readonly_fields = ["public_id", "phone", "created_at"]
    show_full_result_count = False


@admin.register(Campaign)
class CampaignAdmin(BrandScopedAdmin):
    list_display = ["name", "public_id", "channel", "brand", "created_at"]
    list_filter = ["brand", "channel"]
    list_select_related = ["brand"]
    search_fields = ["name", "=public_id"]
    readonly_fields = ["public_id", "created_at"]


@admin.register(Message)
class MessageAdmin(BrandScopedAdmin):
    """Messages are read here; their status changes only through the status
    service, so every status field is read-only."""

    list_display = [
        "public_id",
        "brand",
        "channel",
        "direction",
        "kind",
        "status",
        "status_changed_at",
    ]
    list_filter = ["status", "channel", "kind", "direction", "brand"]
    list_select_related = ["brand"]
    search_fields = ["=public_id"]
    raw_id_fields = ["customer", "campaign", "store", "staff_member"]
    readonly_fields = [
        "public_id",
        "status",
        "status_changed_at",
        "created_at",
        "awaiting_opt_in_at",
        "expired_at",
        "queued_at",
        "sent_at",
        "delivered_at",
        "failed_at",
    ]
    show_full_result_count = False
