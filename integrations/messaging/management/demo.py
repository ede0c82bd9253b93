"""The demo data behind `make run`: brands matching the sandbox's three
Klaviyo accounts, their people, customers and campaigns.

Every row is looked up by a natural key before it is created, so seeding
twice creates nothing the second time and never overwrites a change made
through the site.
"""

from collections import Counter
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from integrations.klaviyo.choices import AuthType, ConnectionState
from integrations.klaviyo.models import KlaviyoConnection
from integrations.messaging.choices import Channel, MembershipRole
from integrations.messaging.models import (
    Brand,
    BrandMembership,
    Campaign,
    Customer,
    StaffMember,
    Store,
)

ADMIN_USERNAME = "admin"
# Not a real key: the legacy brand shows what an API-key connection looks
# like. Start the sandbox with --api-key=<this>=DEMO02 to make it answer.
DEMO_LEGACY_API_KEY = "pk_demo0coffee0roasters0legacy0key00"
# Brand logins see the admin's lists of their own brand, read-only.
BRAND_STAFF_GROUP = "Brand staff (demo)"
BRAND_STAFF_PERMISSIONS = (
    ("messaging", "view_brand"),
    ("messaging", "view_store"),
    ("messaging", "view_staffmember"),
    ("messaging", "view_customer"),
    ("messaging", "view_campaign"),
    ("messaging", "view_message"),
    ("klaviyo", "view_klaviyoconnection"),
    ("klaviyo", "view_outboundmessageevent"),
)


@dataclass(frozen=True)
class DemoCustomer:
    first_name: str
    last_name: str
    email: str
    phone: str


@dataclass(frozen=True)
class DemoBrand:
    slug: str
    name: str
    country: str
    # The sandbox account this brand's demo connection points at.
    account_id: str
    account_name: str
    legacy: bool
    stores: dict[str, tuple[str, ...]]
    customers: tuple[DemoCustomer, ...]
    campaigns: dict[Channel, str]

    @property
    def staff_username(self):
        return f"{self.slug}-staff"


DEMO_BRANDS = (
    DemoBrand(
        slug="outfitters",
        name="Demo Outfitters",
        country="US",
        account_id="DEMO01",
        account_name="Demo Outfitters",
        legacy=False,
        stores={
            "SoHo Flagship": ("Maya Chen", "Jordan Reyes"),
            "Union Square": ("Priya Patel", "Sam Okafor"),
        },
        customers=(
            DemoCustomer(
                "Ava", "Thompson", "ava.thompson@example.com", "(415) 555-0132"
            ),
            DemoCustomer("Liam", "Garcia", "liam.garcia@example.com", "212-555-0187"),
            DemoCustomer("Noah", "Kim", "noah.kim@example.com", "(310) 555-0144"),
            DemoCustomer("Emma", "Rossi", "emma.rossi@example.com", ""),
            DemoCustomer("Olivia", "Brown", "", "(323) 555-0110"),
            DemoCustomer("Ethan", "Walsh", "ethan.walsh@example.com", "555-01"),
        ),
        campaigns={
            Channel.EMAIL: "Spring Collection Launch",
            Channel.SMS: "Weekend Flash Sale",
            Channel.WHATSAPP: "VIP Early Access",
        },
    ),
    DemoBrand(
        slug="coffee",
        name="Demo Coffee Roasters",
        country="DE",
        account_id="DEMO02",
        account_name="Demo Coffee Roasters",
        legacy=True,
        stores={
            "Berlin Mitte": ("Lena Fischer", "Jonas Weber"),
            "München Glockenbach": ("Sophie Wagner",),
        },
        customers=(
            DemoCustomer(
                "Mia", "Schneider", "mia.schneider@example.com", "0151 23456789"
            ),
            DemoCustomer("Felix", "Becker", "felix.becker@example.com", "030 12345678"),
            DemoCustomer("Hannah", "Hoffmann", "", "0170 1234567"),
            DemoCustomer("Paul", "Schulz", "paul.schulz@example.com", "12-34"),
            DemoCustomer("Clara", "Koch", "clara.koch@example.com", "089 1234567"),
        ),
        campaigns={
            Channel.EMAIL: "New Harvest: Ethiopia Yirgacheffe",
            Channel.SMS: "Subscription Renewal Reminder",
            Channel.WHATSAPP: "Barista Workshop Invitation",
        },
    ),
    DemoBrand(
        slug="pets",
        name="Demo Pet Supplies",
        country="US",
        account_id="DEMO03",
        account_name="Demo Pet Supplies",
        legacy=False,
        stores={
            "Silver Lake": ("Carlos Mendoza", "Grace Liu"),
            "Santa Monica": ("Tyler Brooks", "Aisha Khan"),
        },
        customers=(
            DemoCustomer(
                "Chloe", "Nguyen", "chloe.nguyen@example.com", "(213) 555-0163"
            ),
            DemoCustomer("Mason", "Lee", "mason.lee@example.com", "(818) 555-0121"),
            DemoCustomer("Zoe", "Martin", "", "(626) 555-0178"),
            DemoCustomer("Lucas", "Silva", "lucas.silva@example.com", "call me"),
            DemoCustomer("Ella", "Davis", "ella.davis@example.com", "(562) 555-0155"),
        ),
        campaigns={
            Channel.EMAIL: "Adoption Day Newsletter",
            Channel.SMS: "Treats Restock Alert",
            Channel.WHATSAPP: "Grooming Appointment Reminder",
        },
    ),
)


@dataclass(frozen=True)
class Login:
    username: str
    brand_name: str  # empty for the superuser, who sees every brand
    # Whether the password given is this user's: false when the user existed
    # with another password, which seeding leaves alone.
    password_matches: bool


@dataclass
class SeedResult:
    created: Counter = field(default_factory=Counter)
    logins: list[Login] = field(default_factory=list)
    brands: list[tuple[Brand, KlaviyoConnection | None]] = field(default_factory=list)


def demo_data_seed(password):
    """Create whatever demo rows are missing; return what was created, the
    logins and the brands with their connections."""
    result = SeedResult()
    with transaction.atomic():
        admin = _superuser(password, result)
        group = _brand_staff_group()
        for demo in DEMO_BRANDS:
            brand = _get_or_create(
                result,
                "brand",
                Brand,
                slug=demo.slug,
                defaults={"name": demo.name, "default_country": demo.country},
            )
            staff_user = _brand_user(demo, brand, password, group, result)
            for user in (admin, staff_user):
                _get_or_create(
                    result,
                    "membership",
                    BrandMembership,
                    brand=brand,
                    user=user,
                    defaults={"role": MembershipRole.ADMIN},
                )
            _people(demo, brand, result)
            result.brands.append((brand, _connection(demo, brand, result)))
    return result


def _get_or_create(result, label, model, defaults=None, **lookup):
    row, created = model.objects.get_or_create(defaults=defaults, **lookup)
    if created:
        result.created[label] += 1
    return row


def _superuser(password, result):
    user_model = get_user_model()
    user = user_model.objects.filter(username=ADMIN_USERNAME).first()
    if user is None:
        user = user_model.objects.create_superuser(
            ADMIN_USERNAME, f"{ADMIN_USERNAME}@example.com", password
        )
        result.created["user"] += 1
    result.logins.append(Login(user.username, "", user.check_password(password)))
    return user


def _brand_staff_group():
    group, _ = Group.objects.get_or_create(name=BRAND_STAFF_GROUP)
    wanted = [
        Permission.objects.get(content_type__app_label=app, codename=codename)
        for app, codename in BRAND_STAFF_PERMISSIONS
    ]
    group.permissions.add(*wanted)
    return group


def _brand_user(demo, brand, password, group, result):
    user_model = get_user_model()
    user = user_model.objects.filter(username=demo.staff_username).first()
    if user is None:
        user = user_model.objects.create_user(
            demo.staff_username,
            f"{demo.staff_username}@example.com",
            password,
            is_staff=True,
        )
        user.groups.add(group)
        result.created["user"] += 1
    result.logins.append(
        Login(user.username, brand.name, user.check_password(password))
    )
    return user


def _people(demo, brand, result):
    for store_name, staff_names in demo.stores.items():
        store = _get_or_create(result, "store", Store, brand=brand, name=store_name)
        for staff_name in staff_names:
            _get_or_create(
                result,
                "staff member",
                StaffMember,
                brand=brand,
                name=staff_name,
                defaults={"store": store},
            )
    for customer in demo.customers:
        _get_or_create(
            result,
            "customer",
            Customer,
            brand=brand,
            first_name=customer.first_name,
            last_name=customer.last_name,
            defaults={"email": customer.email, "phone_input": customer.phone},
        )
    for channel, name in demo.campaigns.items():
        _get_or_create(
            result, "campaign", Campaign, brand=brand, name=name, channel=channel
        )


def _connection(demo, brand, result):
    """The brand's connection: the legacy brand's is made here, the others
    wait for someone to connect them with OAuth."""
    connection = KlaviyoConnection.objects.filter(brand=brand).first()
    if connection is not None or not demo.legacy:
        return connection
    now = timezone.now()
    connection = KlaviyoConnection(
        brand=brand,
        auth_type=AuthType.LEGACY_API_KEY,
        state=ConnectionState.ACTIVE,
        account_id=demo.account_id,
        account_name=demo.account_name,
        connected_at=now,
        state_changed_at=now,
    )
    connection.legacy_api_key = DEMO_LEGACY_API_KEY
    connection.save()
    result.created["Klaviyo connection"] += 1
    return connection
