"""factory-boy factories for the domain, with traits for connection kinds."""

import datetime

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from integrations.klaviyo.choices import AuthType, ConnectionState
from integrations.klaviyo.models import KlaviyoConnection
from integrations.messaging.choices import (
    Channel,
    Direction,
    MessageKind,
    MessageStatus,
)
from integrations.messaging.models import (
    Brand,
    BrandMembership,
    Campaign,
    Customer,
    Message,
    StaffMember,
    Store,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def save_password(user, create, extracted, **kwargs):
        if create:
            user.save()


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand

    name = factory.Sequence(lambda n: f"Brand {n}")
    slug = factory.Sequence(lambda n: f"brand-{n}")
    default_country = "US"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BrandMembership

    brand = factory.SubFactory(BrandFactory)
    user = factory.SubFactory(UserFactory)


class KlaviyoConnectionFactory(factory.django.DjangoModelFactory):
    """An OAuth connection with export on since an hour ago, unless a trait
    says otherwise."""

    class Meta:
        model = KlaviyoConnection

    brand = factory.SubFactory(BrandFactory)
    auth_type = AuthType.OAUTH
    state = ConnectionState.ACTIVE
    account_id = factory.Sequence(lambda n: f"ACCT{n:04d}")
    account_name = factory.Sequence(lambda n: f"Klaviyo Account {n}")
    connected_at = factory.LazyFunction(
        lambda: timezone.now() - datetime.timedelta(hours=2)
    )
    scopes = "accounts:read events:write profiles:write"
    access_token = factory.Sequence(lambda n: f"access-token-{n}")
    refresh_token = factory.Sequence(lambda n: f"refresh-token-{n}")
    token_expires_at = factory.LazyFunction(
        lambda: timezone.now() + datetime.timedelta(hours=1)
    )
    export_enabled = True
    export_enabled_at = factory.LazyFunction(
        lambda: timezone.now() - datetime.timedelta(hours=1)
    )

    class Params:
        legacy = factory.Trait(
            auth_type=AuthType.LEGACY_API_KEY,
            access_token="",
            refresh_token="",
            token_expires_at=None,
            scopes="",
            legacy_api_key=factory.Sequence(lambda n: f"pk_legacy_{n:032d}"),
        )
        export_off = factory.Trait(export_enabled=False, export_enabled_at=None)
        needs_reconnect = factory.Trait(state=ConnectionState.NEEDS_RECONNECT)


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"Store {n}")


class StaffMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMember

    brand = factory.SubFactory(BrandFactory)
    store = factory.SubFactory(StoreFactory, brand=factory.SelfAttribute("..brand"))
    name = factory.Sequence(lambda n: f"Associate {n}")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    brand = factory.SubFactory(BrandFactory)
    first_name = "Ada"
    last_name = factory.Sequence(lambda n: f"Customer{n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    phone_input = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"Holiday Sale {n}")
    channel = Channel.SMS


class MessageFactory(factory.django.DjangoModelFactory):
    """A new outbound 1-on-1 SMS, not yet sent; statuses come through the
    status service."""

    class Meta:
        model = Message

    brand = factory.SubFactory(BrandFactory)
    customer = factory.SubFactory(
        CustomerFactory, brand=factory.SelfAttribute("..brand")
    )
    channel = Channel.SMS
    direction = Direction.OUTBOUND
    kind = MessageKind.ONE_TO_ONE
    status = MessageStatus.QUEUED

    class Params:
        campaign_send = factory.Trait(
            kind=MessageKind.CAMPAIGN,
            campaign=factory.SubFactory(
                CampaignFactory,
                brand=factory.SelfAttribute("..brand"),
                channel=factory.SelfAttribute("..channel"),
            ),
        )
        by_associate = factory.Trait(
            staff_member=factory.SubFactory(
                StaffMemberFactory, brand=factory.SelfAttribute("..brand")
            ),
            store=factory.SelfAttribute("staff_member.store"),
        )
