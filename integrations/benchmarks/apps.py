from django.apps import AppConfig


class BenchmarksConfig(AppConfig):
    """The export benchmark: it drives the product and the sandbox side by
    side, so it alone may import both."""

    name = "integrations.benchmarks"
    label = "benchmarks"
    verbose_name = "Benchmarks"
