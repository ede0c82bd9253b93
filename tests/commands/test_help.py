import pytest
from django.core.management import load_command_class

COMMANDS = [
    ("klaviyo", "export_events"),
    ("klaviyo", "resync_events"),
    ("klaviyo", "klaviyo_status"),
    ("messaging", "seed_demo"),
]
# Options every Django command has, documented by Django.
DJANGO_OPTIONS = {
    "help",
    "version",
    "verbosity",
    "settings",
    "pythonpath",
    "traceback",
    "no_color",
    "force_color",
    "skip_checks",
}


@pytest.mark.parametrize(("app", "name"), COMMANDS)
def test_every_command_and_each_of_its_options_has_help(app, name):
    command = load_command_class(f"integrations.{app}", name)
    parser = command.create_parser("manage.py", name)

    own = [action for action in parser._actions if action.dest not in DJANGO_OPTIONS]

    assert command.help
    assert own
    assert [action.dest for action in own if not action.help] == []
