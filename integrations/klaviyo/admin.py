from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection as db_connection
from django.utils import timezone
from django.utils.functional import cached_property

from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.connections import (
    ExportSwitchRefused,
    connection_export_switch,
)
from integrations.klaviyo.models import (
    KlaviyoConnection,
    KlaviyoQuota,
    OutboundMessageEvent,
)
from integrations.klaviyo.outbox import export_request
from integrations.klaviyo.resync import events_resync
from integrations.klaviyo.sync_state import sync_statuses
from integrations.messaging.admin import BrandScopedAdmin


class EstimatedCountPaginator(Paginator):
    """Counts an unfiltered PostgreSQL table from the planner's statistics
    instead of scanning millions of rows; filtered lists count exactly."""

    @cached_property
    def count(self):
        query = self.object_list.query
        if db_connection.vendor == "postgresql" and not query.where:
            with db_connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                    [self.object_list.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > 100_000:
                return row[0]
        return super().count


@admin.register(KlaviyoConnection)
class KlaviyoConnectionAdmin(BrandScopedAdmin):
    """Each brand's connection and its sync state. Secrets are never shown:
    their encrypted columns are not editable and not listed."""

    list_display = [
        "brand",
        "auth_type",
        "state",
        "account_name",
        "export_enabled",
        "pending",
        "lag",
        "failed",
        "exported_last_hour",
        "short_last_error",
    ]
    list_filter = ["auth_type", "state", "export_enabled"]
    list_select_related = ["brand"]
    search_fields = ["brand__name", "account_name", "=account_id"]
    readonly_fields = [
        "brand",
        "auth_type",
        "state",
        "state_changed_at",
        "account_id",
        "account_name",
        "connected_at",
        "scopes",
        "token_expires_at",
        "token_refreshed_at",
        "export_enabled",
        "export_enabled_at",
        "export_requested_at",
        "backlog_lease_until",
        "last_error",
        "last_error_at",
        "created_at",
        "updated_at",
    ]
    actions = ["export_now", "resync_failed", "switch_export_on", "switch_export_off"]

    def changelist_view(self, request, extra_context=None):
        self._statuses = None
        return super().changelist_view(request, extra_context)

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        connection_ids = [connection.pk for connection in changelist.result_list]
        self._statuses = sync_statuses(connection_ids)
        self._now = timezone.now()
        return changelist

    def _status(self, connection):
        return self._statuses[connection.pk]

    @admin.display(description="pending")
    def pending(self, connection):
        return self._status(connection).pending

    @admin.display(description="lag")
    def lag(self, connection):
        lag = self._status(connection).lag(self._now)
        if lag is None:
            return "-"
        return f"{int(lag.total_seconds())} s"

    @admin.display(description="failed")
    def failed(self, connection):
        return self._status(connection).failed

    @admin.display(description="exported, last hour")
    def exported_last_hour(self, connection):
        return self._status(connection).exported_last_hour

    @admin.display(description="last error")
    def short_last_error(self, connection):
        return connection.last_error[:80]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Export due events now")
    def export_now(self, request, queryset):
        count = 0
        for connection in queryset:
            export_request(connection.pk)
            count += 1
        self.message_user(request, f"Export asked for {count} connection(s).")

    @admin.action(description="Switch message status export on")
    def switch_export_on(self, request, queryset):
        self._switch_export(request, queryset, enabled=True)

    @admin.action(description="Switch message status export off")
    def switch_export_off(self, request, queryset):
        self._switch_export(request, queryset, enabled=False)

    def _switch_export(self, request, queryset, *, enabled):
        changed, refused = 0, []
        for connection in queryset.select_related("brand"):
            try:
                changed += bool(connection_export_switch(connection, enabled=enabled))
            except ExportSwitchRefused as error:
                refused.append(f"{connection.brand}: {error}")
        self.message_user(
            request,
            f"Export switched {'on' if enabled else 'off'} for {changed} "
            "connection(s).",
        )
        for reason in refused:
            self.message_user(request, reason, level=messages.WARNING)

    @admin.action(description="Re-sync failed and skipped events")
    def resync_failed(self, request, queryset):
        events = OutboundMessageEvent.objects.filter(
            connection__in=queryset, state__in=[SyncState.FAILED, SyncState.SKIPPED]
        )
        resynced, still_skipped = events_resync(events)
        self.message_user(
            request,
            f"{resynced} event(s) queued again; {still_skipped} still lack usable "
            "contact details.",
        )


@admin.register(OutboundMessageEvent)
class OutboundMessageEventAdmin(BrandScopedAdmin):
    """The exported events: a record, read-only, with re-sync as the only
    change an admin can make."""

    brand_field = "connection__brand"
    list_display = [
        "id",
        "metric_name",
        "state",
        "profile_identifier",
        "occurred_at",
        "attempts",
        "last_status_code",
        "exported_at",
        "connection",
    ]
    list_filter = ["state", "channel", "kind", "status", "connection__brand"]
    list_select_related = ["connection__brand"]
    search_fields = ["=unique_id", "=profile_identifier"]
    search_help_text = "Exact message id (msg_…), email or E.164 phone number."
    ordering = ["-id"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    actions = ["resync"]
    readonly_fields = [
        "connection",
        "message",
        "status",
        "channel",
        "kind",
        "metric_name",
        "profile_identifier",
        "occurred_at",
        "unique_id",
        "properties",
        "state",
        "state_reason",
        "attempts",
        "next_attempt_at",
        "claimed_until",
        "claimed_by",
        "last_status_code",
        "last_error",
        "endpoint",
        "exported_at",
        "created_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Re-sync selected events", permissions=["view"])
    def resync(self, request, queryset):
        resynced, still_skipped = events_resync(queryset)
        self.message_user(
            request,
            f"{resynced} event(s) queued again; {still_skipped} still lack usable "
            "contact details.",
        )


@admin.register(KlaviyoQuota)
class KlaviyoQuotaAdmin(admin.ModelAdmin):
    list_display = [
        "account_key",
        "endpoint",
        "steady_limit",
        "window_used",
        "window_ends_at",
        "paused_until",
        "requests",
        "rate_limited",
    ]
    list_filter = ["endpoint"]
    readonly_fields = list_display

    def has_add_permission(self, request):
        return False
