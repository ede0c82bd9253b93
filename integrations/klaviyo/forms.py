"""Forms of the Klaviyo integration pages."""

from django import forms


class OAuthCallbackForm(forms.Form):
    """What Klaviyo's authorize page sends back in the callback's query;
    ``error_description`` is ignored, as anyone can write it into a link."""

    state = forms.CharField(required=False, max_length=512)
    code = forms.CharField(required=False, max_length=2048)
    error = forms.CharField(required=False, max_length=128)


class ExportSwitchForm(forms.Form):
    """The message status export switch: ``enabled`` is "on" or "off";
    without it, the switch is flipped."""

    enabled = forms.TypedChoiceField(
        choices=(("on", "On"), ("off", "Off")),
        coerce=lambda value: value == "on",
        required=False,
        empty_value=None,
    )
