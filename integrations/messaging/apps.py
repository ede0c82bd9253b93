from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "integrations.messaging"
    label = "messaging"
    verbose_name = "Messaging"
