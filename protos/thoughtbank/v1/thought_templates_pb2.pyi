from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TemplateFields(_message.Message):
    __slots__ = ("task_summary", "reasoning_steps", "answer_format")
    TASK_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    REASONING_STEPS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FORMAT_FIELD_NUMBER: _ClassVar[int]
    task_summary: str
    reasoning_steps: _containers.RepeatedScalarFieldContainer[str]
    answer_format: str
    def __init__(self, task_summary: _Optional[str] = ..., reasoning_steps: _Optional[_Iterable[str]] = ..., answer_format: _Optional[str] = ...) -> None: ...

class SourceResponse(_message.Message):
    __slots__ = ("llm", "performance", "cost", "llm_judge", "query_id")
    LLM_FIELD_NUMBER: _ClassVar[int]
    PERFORMANCE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    LLM_JUDGE_FIELD_NUMBER: _ClassVar[int]
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    llm: str
    performance: float
    cost: float
    llm_judge: float
    query_id: str
    def __init__(self, llm: _Optional[str] = ..., performance: _Optional[float] = ..., cost: _Optional[float] = ..., llm_judge: _Optional[float] = ..., query_id: _Optional[str] = ...) -> None: ...

class ThoughtTemplate(_message.Message):
    __slots__ = ("id", "task", "text", "source_query", "source_models", "source_query_ids", "sources", "fields", "pitfalls", "distiller", "created_at", "distiller_version", "merged_queries", "flags")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_QUERY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_MODELS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_QUERY_IDS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    PITFALLS_FIELD_NUMBER: _ClassVar[int]
    DISTILLER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DISTILLER_VERSION_FIELD_NUMBER: _ClassVar[int]
    MERGED_QUERIES_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    id: str
    task: str
    text: str
    source_query: str
    source_models: _containers.RepeatedScalarFieldContainer[str]
    source_query_ids: _containers.RepeatedScalarFieldContainer[str]
    sources: _containers.RepeatedCompositeFieldContainer[SourceResponse]
    fields: TemplateFields
    pitfalls: str
    distiller: str
    created_at: str
    distiller_version: str
    merged_queries: _containers.RepeatedScalarFieldContainer[str]
    flags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., task: _Optional[str] = ..., text: _Optional[str] = ..., source_query: _Optional[str] = ..., source_models: _Optional[_Iterable[str]] = ..., source_query_ids: _Optional[_Iterable[str]] = ..., sources: _Optional[_Iterable[_Union[SourceResponse, _Mapping]]] = ..., fields: _Optional[_Union[TemplateFields, _Mapping]] = ..., pitfalls: _Optional[str] = ..., distiller: _Optional[str] = ..., created_at: _Optional[str] = ..., distiller_version: _Optional[str] = ..., merged_queries: _Optional[_Iterable[str]] = ..., flags: _Optional[_Iterable[str]] = ...) -> None: ...

class ScoredTemplate(_message.Message):
    __slots__ = ("template", "score", "index_version")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    template: ThoughtTemplate
    score: float
    index_version: str
    def __init__(self, template: _Optional[_Union[ThoughtTemplate, _Mapping]] = ..., score: _Optional[float] = ..., index_version: _Optional[str] = ...) -> None: ...

class RetrieveRequest(_message.Message):
    __slots__ = ("query", "k", "task", "task_strict", "min_score", "diversity", "exclude_ids", "exclude_same_query", "ef_search", "nprobe", "namespace")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    TASK_STRICT_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_IDS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SAME_QUERY_FIELD_NUMBER: _ClassVar[int]
    EF_SEARCH_FIELD_NUMBER: _ClassVar[int]
    NPROBE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    query: str
    k: int
    task: str
    task_strict: bool
    min_score: float
    diversity: float
    exclude_ids: _containers.RepeatedScalarFieldContainer[str]
    exclude_same_query: bool
    ef_search: int
    nprobe: int
    namespace: str
    def __init__(self, query: _Optional[str] = ..., k: _Optional[int] = ..., task: _Optional[str] = ..., task_strict: _Optional[bool] = ..., min_score: _Optional[float] = ..., diversity: _Optional[float] = ..., exclude_ids: _Optional[_Iterable[str]] = ..., exclude_same_query: _Optional[bool] = ..., ef_search: _Optional[int] = ..., nprobe: _Optional[int] = ..., namespace: _Optional[str] = ...) -> None: ...

class RetrieveResponse(_message.Message):
    __slots__ = ("hits", "index_version", "predicted_task", "predicted_task_confidence")
    HITS_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_TASK_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_TASK_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[ScoredTemplate]
    index_version: str
    predicted_task: str
    predicted_task_confidence: float
    def __init__(self, hits: _Optional[_Iterable[_Union[ScoredTemplate, _Mapping]]] = ..., index_version: _Optional[str] = ..., predicted_task: _Optional[str] = ..., predicted_task_confidence: _Optional[float] = ...) -> None: ...

class RetrieveBatchRequest(_message.Message):
    __slots__ = ("requests", "namespace")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[RetrieveRequest]
    namespace: str
    def __init__(self, requests: _Optional[_Iterable[_Union[RetrieveRequest, _Mapping]]] = ..., namespace: _Optional[str] = ...) -> None: ...

class RetrieveBatchResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[RetrieveResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[RetrieveResponse, _Mapping]]] = ...) -> None: ...

class AugmentPromptRequest(_message.Message):
    __slots__ = ("query", "k", "task", "task_strict", "min_score", "diversity", "max_template_tokens", "exclude_ids", "exclude_same_query", "ef_search", "nprobe", "namespace")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    TASK_STRICT_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    MAX_TEMPLATE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_IDS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SAME_QUERY_FIELD_NUMBER: _ClassVar[int]
    EF_SEARCH_FIELD_NUMBER: _ClassVar[int]
    NPROBE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    query: str
    k: int
    task: str
    task_strict: bool
    min_score: float
    diversity: float
    max_template_tokens: int
    exclude_ids: _containers.RepeatedScalarFieldContainer[str]
    exclude_same_query: bool
    ef_search: int
    nprobe: int
    namespace: str
    def __init__(self, query: _Optional[str] = ..., k: _Optional[int] = ..., task: _Optional[str] = ..., task_strict: _Optional[bool] = ..., min_score: _Optional[float] = ..., diversity: _Optional[float] = ..., max_template_tokens: _Optional[int] = ..., exclude_ids: _Optional[_Iterable[str]] = ..., exclude_same_query: _Optional[bool] = ..., ef_search: _Optional[int] = ..., nprobe: _Optional[int] = ..., namespace: _Optional[str] = ...) -> None: ...

class AugmentPromptResponse(_message.Message):
    __slots__ = ("prompt", "hits", "index_version")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    hits: _containers.RepeatedCompositeFieldContainer[ScoredTemplate]
    index_version: str
    def __init__(self, prompt: _Optional[str] = ..., hits: _Optional[_Iterable[_Union[ScoredTemplate, _Mapping]]] = ..., index_version: _Optional[str] = ...) -> None: ...

class GetTemplateRequest(_message.Message):
    __slots__ = ("id", "namespace")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    id: str
    namespace: str
    def __init__(self, id: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class GetTemplateResponse(_message.Message):
    __slots__ = ("template", "index_version")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    template: ThoughtTemplate
    index_version: str
    def __init__(self, template: _Optional[_Union[ThoughtTemplate, _Mapping]] = ..., index_version: _Optional[str] = ...) -> None: ...

class GetIndexInfoRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class GetIndexInfoResponse(_message.Message):
    __slots__ = ("index_version", "count", "task_counts", "embedder", "dimension", "index_type", "metric", "created_at", "manifest_json")
    class TaskCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TASK_COUNTS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDER_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    INDEX_TYPE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    index_version: str
    count: int
    task_counts: _containers.ScalarMap[str, int]
    embedder: str
    dimension: int
    index_type: str
    metric: str
    created_at: str
    manifest_json: str
    def __init__(self, index_version: _Optional[str] = ..., count: _Optional[int] = ..., task_counts: _Optional[_Mapping[str, int]] = ..., embedder: _Optional[str] = ..., dimension: _Optional[int] = ..., index_type: _Optional[str] = ..., metric: _Optional[str] = ..., created_at: _Optional[str] = ..., manifest_json: _Optional[str] = ...) -> None: ...

class RecordOutcomeRequest(_message.Message):
    __slots__ = ("outcome_id", "query", "template_ids", "score", "baseline_score", "task", "index_version", "model", "namespace")
    OUTCOME_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_IDS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SCORE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    outcome_id: str
    query: str
    template_ids: _containers.RepeatedScalarFieldContainer[str]
    score: float
    baseline_score: float
    task: str
    index_version: str
    model: str
    namespace: str
    def __init__(self, outcome_id: _Optional[str] = ..., query: _Optional[str] = ..., template_ids: _Optional[_Iterable[str]] = ..., score: _Optional[float] = ..., baseline_score: _Optional[float] = ..., task: _Optional[str] = ..., index_version: _Optional[str] = ..., model: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class RecordOutcomeResponse(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    def __init__(self, recorded: _Optional[bool] = ...) -> None: ...

class RecordOutcomesRequest(_message.Message):
    __slots__ = ("outcomes", "namespace")
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[RecordOutcomeRequest]
    namespace: str
    def __init__(self, outcomes: _Optional[_Iterable[_Union[RecordOutcomeRequest, _Mapping]]] = ..., namespace: _Optional[str] = ...) -> None: ...

class RecordOutcomesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RecordOutcomeResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[RecordOutcomeResponse, _Mapping]]] = ...) -> None: ...

class ListNamespacesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NamespaceInfo(_message.Message):
    __slots__ = ("name", "index_version", "count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    index_version: str
    count: int
    def __init__(self, name: _Optional[str] = ..., index_version: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class ListNamespacesResponse(_message.Message):
    __slots__ = ("namespaces",)
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    namespaces: _containers.RepeatedCompositeFieldContainer[NamespaceInfo]
    def __init__(self, namespaces: _Optional[_Iterable[_Union[NamespaceInfo, _Mapping]]] = ...) -> None: ...
