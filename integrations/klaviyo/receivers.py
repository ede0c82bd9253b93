"""Signal receivers: they only hand work to the background queue."""

from django.dispatch import receiver
from django_q.tasks import async_task

from integrations.klaviyo.signals import export_requested

EXPORT_TASK = "integrations.klaviyo.tasks.export_connection"


@receiver(export_requested, dispatch_uid="klaviyo.queue_export")
def queue_export(sender, connection_id, **kwargs):
    async_task(
        EXPORT_TASK,
        connection_id,
        task_name=f"klaviyo-export-{connection_id}",
        group="klaviyo-export",
    )
