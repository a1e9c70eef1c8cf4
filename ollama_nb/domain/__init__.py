"""Domain: validated values and errors. No I/O, no framework imports."""

from .catalog import ModelDetails, ModelInfo, ModelSummary, RunningModel
from .errors import (
    BadRequestError,
    CircuitOpenError,
    ConfigurationError,
    ConnectionLostError,
    HostNotAllowedError,
    InvalidInputError,
    ModelNotFoundError,
    OllamaNbError,
    RequestTimeoutError,
    RunnerError,
    ServerBusyError,
    ServerError,
    ServerUnavailableError,
    StreamError,
)
from .events import RequestEvent, RequestKind, RequestStatus
from .image_errors import ImageError
from .messages import ChatMessage, ChatRequest, EmbedRequest, GenerateRequest, Role, ToolCall
from .names import ModelName
from .options import GenerationOptions, KeepAlive, ResponseFormat, Think, validate_think
from .results import ChatChunk, ChatResult, EmbedResult, PullProgress, Timings

__all__ = [
    "BadRequestError",
    "ChatChunk",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "CircuitOpenError",
    "ConfigurationError",
    "ConnectionLostError",
    "EmbedRequest",
    "EmbedResult",
    "GenerateRequest",
    "GenerationOptions",
    "HostNotAllowedError",
    "ImageError",
    "InvalidInputError",
    "KeepAlive",
    "ModelDetails",
    "ModelInfo",
    "ModelName",
    "ModelNotFoundError",
    "ModelSummary",
    "OllamaNbError",
    "PullProgress",
    "RequestEvent",
    "RequestKind",
    "RequestStatus",
    "RequestTimeoutError",
    "ResponseFormat",
    "Role",
    "RunnerError",
    "RunningModel",
    "ServerBusyError",
    "ServerError",
    "ServerUnavailableError",
    "StreamError",
    "Think",
    "Timings",
    "ToolCall",
    "validate_think",
]
