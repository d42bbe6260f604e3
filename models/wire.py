"""Every WebSocket message as a pydantic model: the client's actions and the server's messages, each service's
update with its payload model. The one definition of the wire format: the server builds its replies from these
(see :func:`system_message`), and the AsyncAPI document (models/asyncapi.py) is generated from them.

Updates take the fast path (ws/hub.py serialises a plain envelope once per update, no validation on the hot path);
:data:`UPDATE_MODELS` describes them, and the tests validate real ones against the document. Optional keys are
left out of a message when they have no value, never sent as null: their schemas say so (``SkipJsonSchema``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from models.catalog import ALL, SERVICE_NAMES, SYSTEM, Group
from models.chain import ExplorersPayload, OnchainPayload, RpcNodesPayload
from models.huggingface import HuggingfacePayload
from models.market import MarketDataPayload
from models.messages import ACTIONS, Action, MessageType, encode
from models.monitoring import HealthPayload, PersistencePayload, PoolPayload, SchedulerPayload
from models.news import NewsPayload, SentimentPayload
from models.whales import WhaleTrackingPayload

MAX_ID_LENGTH = 64


def _one_of(names: tuple[str, ...], what: str) -> Any:
    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"not a {what}: {value!r}")
        return value
    return AfterValidator(check)


#: One of the twelve services.
ServiceName = Annotated[str, _one_of(SERVICE_NAMES, "service"),
                        WithJsonSchema({"type": "string", "enum": list(SERVICE_NAMES)})]
#: What a client may subscribe to: a service, ``all`` (every service of the endpoint) or ``system``.
Target = Annotated[str, _one_of((*SERVICE_NAMES, ALL, SYSTEM), "subscription target"),
                   WithJsonSchema({"type": "string", "enum": [*SERVICE_NAMES, ALL, SYSTEM]})]
#: A subscription a connection holds: a service or ``system``.
Subscription = Annotated[str, _one_of((*SERVICE_NAMES, SYSTEM), "subscription"),
                         WithJsonSchema({"type": "string", "enum": [*SERVICE_NAMES, SYSTEM]})]
#: A client's request id, echoed at the top level of the reply.
RequestId = Annotated[int | float | str, WithJsonSchema({
    "description": f"Any number, or a string of at most {MAX_ID_LENGTH} characters",
    "anyOf": [{"type": "number"}, {"type": "string", "maxLength": MAX_ID_LENGTH}]})]
Timestamp = Annotated[str, Field(description="ISO-8601 UTC with milliseconds and a Z",
                                 examples=["2026-11-29T10:30:00.000Z"])]


# -- client -> server ---------------------------------------------------------------------------------------
class ClientMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown keys are ignored by the server

    id: RequestId | SkipJsonSchema[None] = Field(default=None, description="Echoed at the top level of the reply")


class Since(BaseModel):
    """Where a resuming client left off: the last ``seq`` it saw of the service, in that ``epoch``."""

    seq: int = Field(ge=0)
    epoch: str


class Subscribe(ClientMessage):
    action: Literal[Action.SUBSCRIBE]
    service: Target
    since: Since | SkipJsonSchema[None] = Field(
        default=None, description="Resume: the missed updates after since.seq come next, when the server still "
                                  "has them (subscription_confirmed.data.recovered says whether)")


class Unsubscribe(ClientMessage):
    action: Literal[Action.UNSUBSCRIBE]
    service: Target


class GetStatus(ClientMessage):
    action: Literal[Action.GET_STATUS]


class Ping(ClientMessage):
    action: Literal[Action.PING]
    data: Any = Field(default=None, description="Any JSON value, echoed as the pong's data ({} when absent)")


CLIENT_MODELS: dict[Action, type[ClientMessage]] = {
    Action.SUBSCRIBE: Subscribe, Action.UNSUBSCRIBE: Unsubscribe, Action.GET_STATUS: GetStatus, Action.PING: Ping}


# -- server -> client ---------------------------------------------------------------------------------------
# (Class names become type names in generated clients: ``StatusMessage`` and ``ErrorMessage``, as ``Status`` is
# reserved by AsyncAPI Modelina and ``Error`` would merge with TypeScript's own.)
class Data(BaseModel):
    """A system message's data. Keys a newer server adds pass through (clients ignore what they do not know)."""

    model_config = ConfigDict(extra="allow")


class ServerMessage(BaseModel):
    """The spec's envelope: ``{service, type, data, timestamp}``, plus ``id`` echoing a client's request id."""

    service: str
    type: MessageType
    data: Any
    timestamp: Timestamp
    id: RequestId | SkipJsonSchema[None] = Field(
        default=None, description="The id of the client message this replies to, when it had one")


class SystemMessage(ServerMessage):
    service: Literal["system"]


class ConnectionEstablishedData(Data):
    client_id: str
    message: str
    endpoint: str = Field(description="The path the client connected to")
    services: list[ServiceName] = Field(description="The services this endpoint serves")
    auto_subscribe: list[ServiceName] = Field(description="The services it subscribed the client to on connect")


class ConnectionEstablished(SystemMessage):
    type: Literal[MessageType.CONNECTION_ESTABLISHED]
    data: ConnectionEstablishedData
    client_id: str = Field(description="Also at the top level, where the spec's clients read it")


class WelcomeData(Data):
    message: str
    client_id: str
    available_services: dict[Group, list[ServiceName]] = Field(description="The services by group")
    usage: dict[Action, dict[str, Any]] = Field(description="An example message of each action")
    actions: list[Action]


class Welcome(SystemMessage):
    """Sent by /ws/master after connection_established."""

    type: Literal[MessageType.WELCOME]
    data: WelcomeData


class SubscriptionConfirmedData(Data):
    service: Target = Field(description="What the client subscribed to")
    subscriptions: list[Subscription] = Field(description="Everything the connection is now subscribed to")
    services: list[ServiceName] | SkipJsonSchema[None] = Field(
        default=None, description="For service 'all': the services that expanded to")
    message: str
    recovered: bool | SkipJsonSchema[None] = Field(
        default=None, description="Resume only: true when every update after since.seq follows")
    epoch: str | SkipJsonSchema[None] = Field(default=None, description="Resume only: the service's epoch now")
    reason: Literal["epoch_changed", "too_old", "too_many"] | SkipJsonSchema[None] = Field(
        default=None, description="Resume only, when not recovered: why (then the latest update follows)")


class SubscriptionConfirmed(SystemMessage):
    """Then, per newly subscribed service, its latest update (the snapshot), when it has one."""

    type: Literal[MessageType.SUBSCRIPTION_CONFIRMED]
    data: SubscriptionConfirmedData


class UnsubscriptionConfirmedData(Data):
    service: Target
    subscriptions: list[Subscription]
    message: str


class UnsubscriptionConfirmed(SystemMessage):
    type: Literal[MessageType.UNSUBSCRIPTION_CONFIRMED]
    data: UnsubscriptionConfirmedData


class ClientData(Data):
    """A connection as the server sees it."""

    client_id: str
    connected_at: Timestamp
    last_activity: Timestamp
    subscriptions: list[Subscription]
    endpoint: str
    messages_sent: int
    messages_received: int
    queued: int = Field(description="Messages waiting in this client's send queue")


class StatusData(ClientData):
    total_clients: int


class StatusMessage(SystemMessage):
    """The reply to get_status."""

    type: Literal[MessageType.STATUS]
    data: StatusData


class Pong(SystemMessage):
    """The reply to ping: its data echoed ({} when it had none)."""

    type: Literal[MessageType.PONG]
    data: Any


class ErrorData(Data):
    message: str
    available_actions: list[Action] | SkipJsonSchema[None] = Field(
        default=None, description="When the action was missing or unknown (or the frame was not a JSON object)")
    available_services: list[Target] | SkipJsonSchema[None] = Field(
        default=None, description="When the service was missing, unknown or not served on this endpoint")


class ErrorMessage(SystemMessage):
    """The reply to a bad client message (or to too many of them); the connection stays open."""

    type: Literal[MessageType.ERROR]
    data: ErrorData


class NoticeData(Data):
    redis: Literal["connected", "unreachable"] = Field(
        description="The state of the Redis the replicas share (only with REDIS_URL set)")
    since: str = Field(description="Since when, ISO-8601 UTC")
    message: str


class Notice(SystemMessage):
    """Unprompted, to every subscribed client of a replica: the fan-out backend lost or regained Redis. While it
    is unreachable no update arrives; stay connected (or resume with since on another replica)."""

    type: Literal[MessageType.NOTICE]
    data: NoticeData


SYSTEM_MODELS: dict[MessageType, type[SystemMessage]] = {
    MessageType.CONNECTION_ESTABLISHED: ConnectionEstablished, MessageType.WELCOME: Welcome,
    MessageType.SUBSCRIPTION_CONFIRMED: SubscriptionConfirmed,
    MessageType.UNSUBSCRIPTION_CONFIRMED: UnsubscriptionConfirmed, MessageType.STATUS: StatusMessage,
    MessageType.PONG: Pong, MessageType.ERROR: ErrorMessage, MessageType.NOTICE: Notice}


def system_message(data: BaseModel | Any, type_: MessageType, **extra: Any) -> str:
    """A system message as JSON text, its data from the model of its type (keys without a value left out)."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", exclude_none=True)
    return encode(SYSTEM, type_, data, **extra)


# -- updates ------------------------------------------------------------------------------------------------
class Update(ServerMessage):
    """A service's update: sent as it is published, and as the snapshot right after subscription_confirmed."""

    type: Literal[MessageType.UPDATE]
    seq: int = Field(ge=1, description="Per service, rising by one with each update")
    epoch: str | SkipJsonSchema[None] = Field(
        default=None, description="The history seq counts in; a new epoch restarts the count (resume with since)")
    restored: Literal[True] | SkipJsonSchema[None] = Field(
        default=None, description="A snapshot read back from the history after a restart: not news")
    recovered: Literal[True] | SkipJsonSchema[None] = Field(
        default=None, description="An update missed while away, replayed after a resume")


class MarketDataUpdate(Update):
    service: Literal["market_data"]
    data: MarketDataPayload


class ExplorersUpdate(Update):
    service: Literal["explorers"]
    data: ExplorersPayload


class NewsUpdate(Update):
    service: Literal["news"]
    data: NewsPayload


class SentimentUpdate(Update):
    service: Literal["sentiment"]
    data: SentimentPayload


class WhaleTrackingUpdate(Update):
    service: Literal["whale_tracking"]
    data: WhaleTrackingPayload


class RpcNodesUpdate(Update):
    service: Literal["rpc_nodes"]
    data: RpcNodesPayload


class OnchainUpdate(Update):
    service: Literal["onchain"]
    data: OnchainPayload


class HealthCheckerUpdate(Update):
    service: Literal["health_checker"]
    data: HealthPayload


class PoolManagerUpdate(Update):
    service: Literal["pool_manager"]
    data: PoolPayload


class SchedulerUpdate(Update):
    service: Literal["scheduler"]
    data: SchedulerPayload


class HuggingfaceUpdate(Update):
    service: Literal["huggingface"]
    data: HuggingfacePayload


class PersistenceUpdate(Update):
    service: Literal["persistence"]
    data: PersistencePayload


#: Each service's update model, in the catalogue's order.
UPDATE_MODELS: dict[str, type[Update]] = {
    "market_data": MarketDataUpdate, "explorers": ExplorersUpdate, "news": NewsUpdate,
    "sentiment": SentimentUpdate, "whale_tracking": WhaleTrackingUpdate, "rpc_nodes": RpcNodesUpdate,
    "onchain": OnchainUpdate, "health_checker": HealthCheckerUpdate, "pool_manager": PoolManagerUpdate,
    "scheduler": SchedulerUpdate, "huggingface": HuggingfaceUpdate, "persistence": PersistenceUpdate}
assert tuple(UPDATE_MODELS) == SERVICE_NAMES, "one update model per service of the catalogue"
assert tuple(CLIENT_MODELS) == tuple(Action) and len(ACTIONS) == len(CLIENT_MODELS)

#: Any service's update, told apart by its ``service``.
AnyUpdate = Annotated[
    MarketDataUpdate | ExplorersUpdate | NewsUpdate | SentimentUpdate | WhaleTrackingUpdate | RpcNodesUpdate
    | OnchainUpdate | HealthCheckerUpdate | PoolManagerUpdate | SchedulerUpdate | HuggingfaceUpdate
    | PersistenceUpdate, Field(discriminator="service")]
