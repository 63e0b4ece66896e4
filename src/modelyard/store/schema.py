"""SQLAlchemy tables. Changed only together with an Alembic migration."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Double)
    # JSON of the project's rate limits (None: the server's defaults).
    rate_limits: Mapped[str | None] = mapped_column(Text, nullable=True)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Double)
    # argon2id, PHC string form; None until the user sets a password for the web UI.
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)


class BrowserSessionRow(Base):
    """A web UI login. ``id`` is the SHA-256 of the cookie's secret, never the secret."""

    __tablename__ = "browser_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double)


class MembershipRow(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Double)


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_timestamp", "timestamp"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    timestamp: Mapped[float] = mapped_column(Double)
    actor: Mapped[str] = mapped_column(String(128))
    token_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    action: Mapped[str] = mapped_column(String(128))
    project: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    target: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")
    # The chain: record_hash = H(prev_hash, this record's fields); prev_hash is the
    # record_hash of the record before (NULL only on rows older than migration 0015).
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    record_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditChainRow(Base):
    """The audit chain's head (one row, id 1); appenders lock it to keep the chain linear."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_hash: Mapped[str] = mapped_column(String(64))


class LoginFailureRow(Base):
    """Failed logins per key (``user:<name>`` or ``ip:<address>``), for lockout."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    first_failure_at: Mapped[float] = mapped_column(Double)
    locked_until: Mapped[float | None] = mapped_column(Double, nullable=True)


class ArtifactEntryRow(Base):
    """One logical path in an artifact namespace (a project, later a run or model version).

    The rows of a namespace are its manifest: logical path → content digest.
    """

    __tablename__ = "artifact_entries"
    __table_args__ = (UniqueConstraint("namespace", "path"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    namespace: Mapped[str] = mapped_column(String(128))
    path: Mapped[str] = mapped_column(String(1024))
    digest: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Double)


# --- tracking ---------------------------------------------------------------------------

_BIGINT_PK = BigInteger().with_variant(Integer, "sqlite")


class ExperimentRow(Base):
    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    creation_time_ms: Mapped[int] = mapped_column(BigInteger)
    last_update_time_ms: Mapped[int] = mapped_column(BigInteger)


class ExperimentTagRow(Base):
    __tablename__ = "experiment_tags"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_experiment_start", "experiment_id", "start_time_ms"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    start_time_ms: Mapped[int] = mapped_column(BigInteger)
    end_time_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    user: Mapped[str] = mapped_column(String(128))
    parent_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")


class ParamRow(Base):
    __tablename__ = "params"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunTagRow(Base):
    __tablename__ = "run_tags"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MetricRow(Base):
    """Append-only metric history. NaN is stored as ``is_nan`` (SQLite turns NaN to NULL)."""

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_key_step", "run_id", "key", "step"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[float] = mapped_column(Double)
    is_nan: Mapped[bool] = mapped_column(Boolean, default=False)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)


class LatestMetricRow(Base):
    """The newest value per (run, key): what search filters and orders on."""

    __tablename__ = "latest_metrics"
    __table_args__ = (Index("ix_latest_metrics_key_value", "key", "value"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[float] = mapped_column(Double)
    is_nan: Mapped[bool] = mapped_column(Boolean, default=False)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)


class LogBatchRow(Base):
    """Idempotency keys of applied log batches: a retried batch is applied once."""

    __tablename__ = "log_batches"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Double)


# --- model registry ---------------------------------------------------------------------


class RegisteredModelRow(Base):
    __tablename__ = "registered_models"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class RegisteredModelTagRow(Base):
    __tablename__ = "registered_model_tags"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ModelVersionRow(Base):
    """A version: an immutable set of files (in artifact namespace ``model-version:<id>``)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    source_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    source_uri: Mapped[str] = mapped_column(Text, default="")
    flavor: Mapped[str] = mapped_column(String(64))
    signature_json: Mapped[str] = mapped_column(Text, default="")
    package_digest: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), default="READY")
    description: Mapped[str] = mapped_column(Text, default="")
    user: Mapped[str] = mapped_column(String(128))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # MLflow's stage (None, Staging, Production, Archived) and last change (None: never).
    current_stage: Mapped[str] = mapped_column(String(20), default="None", server_default="None")
    updated_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ModelVersionTagRow(Base):
    __tablename__ = "model_version_tags"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ModelAliasRow(Base):
    __tablename__ = "model_aliases"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class AliasHistoryRow(Base):
    __tablename__ = "model_alias_history"
    __table_args__ = (Index("ix_model_alias_history_model", "model_id", "id"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(128))
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user: Mapped[str] = mapped_column(String(128))
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)


# --- MLflow 3 logged models -------------------------------------------------------------


class LoggedModelRow(Base):
    """An MLflow 3 logged model; its files are in artifact namespace ``logged-model:<id>``."""

    __tablename__ = "logged_models"
    __table_args__ = (Index("ix_logged_models_experiment_name", "experiment_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    model_type: Mapped[str] = mapped_column(String(256), default="")
    source_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(32))
    status_message: Mapped[str] = mapped_column(Text, default="")
    user: Mapped[str] = mapped_column(String(128))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class LoggedModelTagRow(Base):
    __tablename__ = "logged_model_tags"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("logged_models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class LoggedModelParamRow(Base):
    __tablename__ = "logged_model_params"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("logged_models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# --- datasets and lineage ---------------------------------------------------------------


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class DatasetVersionRow(Base):
    """An immutable version; its files are in artifact namespace ``dataset-version:<id>``.

    ``profile_json`` is the profile document of its tables (docs/data.md).
    """

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    manifest_digest: Mapped[str] = mapped_column(String(64), index=True)
    total_size: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    user: Mapped[str] = mapped_column(String(128))
    source_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    profile_json: Mapped[str] = mapped_column(Text, default="{}")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class LineageEdgeRow(Base):
    """A stored lineage edge between two typed nodes (``kind``, ``id``).

    Edges point the way data flows: dataset_version -input-> run -output-> dataset_version,
    run -produced-> model_version -serves-> deployment. ``produced`` edges of registered
    versions are derived from ``model_versions.source_run_id`` and not stored here.
    """

    __tablename__ = "lineage_edges"
    __table_args__ = (
        UniqueConstraint("src_kind", "src_id", "dst_kind", "dst_id", "edge_type"),
        Index("ix_lineage_edges_dst", "dst_kind", "dst_id"),
    )

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    src_kind: Mapped[str] = mapped_column(String(32))
    src_id: Mapped[str] = mapped_column(String(128))
    dst_kind: Mapped[str] = mapped_column(String(32))
    dst_id: Mapped[str] = mapped_column(String(128))
    edge_type: Mapped[str] = mapped_column(String(16))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class DeploymentRow(Base):
    """Desired state of a deployment; ``generation`` grows with every change to it.

    Names are unique among deployments not yet deleted (the gateway routes by name);
    deleted rows stay for the replica history the cost ledger reads.
    """

    __tablename__ = "deployments"
    __table_args__ = (
        Index(
            "uq_deployments_live_name",
            "name",
            unique=True,
            sqlite_where=text("status != 'deleted'"),
            postgresql_where=text("status != 'deleted'"),
        ),
    )

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    config_json: Mapped[str] = mapped_column(Text)
    backend_json: Mapped[str] = mapped_column(Text, server_default='{"kind": "local"}')
    status: Mapped[str] = mapped_column(String(16))
    stable_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    previous_stable: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rollout_json: Mapped[str] = mapped_column(Text, default="")
    generation: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class DeploymentRevisionRow(Base):
    __tablename__ = "deployment_revisions"
    __table_args__ = (UniqueConstraint("deployment_id", "number"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[int] = mapped_column(Integer)
    model_ref: Mapped[str] = mapped_column(Text)
    settings_json: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text, default="")
    weight: Mapped[int] = mapped_column(Integer, default=0)
    shadow_percent: Mapped[float] = mapped_column(Double, default=0.0)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class DeploymentReplicaRow(Base):
    """A replica process: where it runs, its state, and what it cost (start/stop, cpu, memory,
    gpu)."""

    __tablename__ = "deployment_replicas"
    __table_args__ = (Index("ix_deployment_replicas_dep_state", "deployment_id", "state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    pid: Mapped[int] = mapped_column(Integer)
    port: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(8))
    standby: Mapped[bool] = mapped_column(Boolean, default=False)
    cpu: Mapped[float] = mapped_column(Double)
    memory_mb: Mapped[int] = mapped_column(Integer)
    gpu: Mapped[float] = mapped_column(Double, default=0.0, server_default=text("0"))
    started_at_ms: Mapped[int] = mapped_column(BigInteger)
    ready_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    stopped_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    exit_reason: Mapped[str] = mapped_column(Text, default="")


class DeploymentEventRow(Base):
    __tablename__ = "deployment_events"
    __table_args__ = (Index("ix_deployment_events_dep_id", "deployment_id", "id"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    time_ms: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text)
    data_json: Mapped[str] = mapped_column(Text, default="{}")


# ---- monitoring (migration 0007) ------------------------------------------------------


def _deployment_fk() -> Mapped[int]:
    return mapped_column(_BIGINT_PK, ForeignKey("deployments.id", ondelete="CASCADE"))


class DeploymentMonitoringRow(Base):
    """A deployment's monitoring settings (``MonitorConfig`` as JSON)."""

    __tablename__ = "deployment_monitoring"

    deployment_id: Mapped[int] = mapped_column(
        _BIGINT_PK, ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    config_json: Mapped[str] = mapped_column(Text)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class PredictionSegmentRow(Base):
    """A Parquet file of the prediction log (``source`` ``replica``: predictions with
    features) or of the gateway's request log (``gateway``); ``batch`` names the spool
    files it came from, so collecting the same files twice is refused."""

    __tablename__ = "prediction_segments"
    __table_args__ = (
        UniqueConstraint("batch"),
        Index("ix_prediction_segments_dep_last", "deployment_id", "last_ms"),
    )

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = _deployment_fk()
    source: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer)
    batch: Mapped[str] = mapped_column(String(64))
    first_ms: Mapped[int] = mapped_column(BigInteger)
    last_ms: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class MonitorSampleRow(Base):
    __tablename__ = "monitor_samples"
    __table_args__ = (Index("ix_monitor_samples_dep_time", "deployment_id", "time_ms"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = _deployment_fk()
    time_ms: Mapped[int] = mapped_column(BigInteger)
    interval_s: Mapped[float] = mapped_column(Double)
    values_json: Mapped[str] = mapped_column(Text)


class DriftResultRow(Base):
    __tablename__ = "drift_results"
    __table_args__ = (Index("ix_drift_results_dep_time", "deployment_id", "time_ms"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = _deployment_fk()
    time_ms: Mapped[int] = mapped_column(BigInteger)
    window_start_ms: Mapped[int] = mapped_column(BigInteger)
    window_end_ms: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(300))
    rows: Mapped[int] = mapped_column(BigInteger)
    drift_share: Mapped[float] = mapped_column(Double)
    dataset_drift: Mapped[bool] = mapped_column(Boolean)
    report_json: Mapped[str] = mapped_column(Text)


class AlertRuleRow(Base):
    """An alert rule; ``webhook_secret`` signs its notifications (shown once at creation)."""

    __tablename__ = "alert_rules"
    __table_args__ = (Index("ix_alert_rules_dep", "deployment_id"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = _deployment_fk()
    rule: Mapped[str] = mapped_column(String(300))
    webhook_url: Mapped[str] = mapped_column(Text)
    webhook_secret: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    hysteresis: Mapped[float] = mapped_column(Double)
    state_json: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class AlertEventRow(Base):
    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_dep_id", "deployment_id", "id"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    rule_id: Mapped[int | None] = mapped_column(_BIGINT_PK, nullable=True)
    deployment_id: Mapped[int] = _deployment_fk()
    time_ms: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    data_json: Mapped[str] = mapped_column(Text)


class AlertSilenceRow(Base):
    __tablename__ = "alert_silences"
    __table_args__ = (Index("ix_alert_silences_dep", "deployment_id"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = _deployment_fk()
    rule: Mapped[str] = mapped_column(String(300))
    starts_ms: Mapped[int] = mapped_column(BigInteger)
    ends_ms: Mapped[int] = mapped_column(BigInteger)
    comment: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))


class AlertActionRow(Base):
    __tablename__ = "alert_actions"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    config_json: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class FeedbackBatchRow(Base):
    __tablename__ = "feedback_batches"
    __table_args__ = (Index("ix_feedback_batches_dep_time", "deployment_id", "time_ms"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = _deployment_fk()
    time_ms: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    matched: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)


# ---- cost ledger (migration 0008) -----------------------------------------------------


class ProjectTagRow(Base):
    """A cost-allocation tag of a project (``team=risk``); deployments and runs inherit it."""

    __tablename__ = "project_tags"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class DeploymentTagRow(Base):
    """A cost-allocation tag of a deployment; it wins over the project's tag of that key."""

    __tablename__ = "deployment_tags"

    deployment_id: Mapped[int] = mapped_column(
        _BIGINT_PK, ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class DeploymentTrafficRow(Base):
    """Requests a deployment answered, and its ready-replica time, per minute bucket.

    Written by the monitor loop from each sample (a sample counts in the bucket its start
    falls in); kept far longer than the samples, so a past period's requests and idle
    share can be recomputed.
    """

    __tablename__ = "deployment_traffic"

    deployment_id: Mapped[int] = mapped_column(
        _BIGINT_PK, ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    bucket_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger)
    sampled_s: Mapped[float] = mapped_column(Double)
    replica_s: Mapped[float] = mapped_column(Double)
    idle_replica_s: Mapped[float] = mapped_column(Double)


class ReplicaUsageRow(Base):
    """A replica's measured CPU (cores) and resident memory over one monitor interval."""

    __tablename__ = "replica_usage"
    __table_args__ = (
        Index("ix_replica_usage_dep_time", "deployment_id", "time_ms"),
        Index("ix_replica_usage_time", "time_ms"),
    )

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = _deployment_fk()
    replica_id: Mapped[str] = mapped_column(String(32))
    revision: Mapped[int] = mapped_column(Integer)
    time_ms: Mapped[int] = mapped_column(BigInteger)
    interval_s: Mapped[float] = mapped_column(Double)
    cpu_cores: Mapped[float] = mapped_column(Double)
    rss_mb: Mapped[float] = mapped_column(Double)


# ---- budgets and quotas (migration 0009) -----------------------------------------------


class BudgetRow(Base):
    """A project's monthly budget; ``webhook_secret`` signs its notifications (shown once).

    ``state_json`` is the evaluation state (``cost._budget.BudgetState``); ``last_json``
    the newest evaluation (spend, forecast) as ``budget ls`` shows it.
    """

    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("project_id"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    monthly_amount: Mapped[float] = mapped_column(Double)
    currency: Mapped[str] = mapped_column(String(3))
    thresholds_json: Mapped[str] = mapped_column(Text)
    webhook_url: Mapped[str] = mapped_column(Text)
    webhook_secret: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    state_json: Mapped[str] = mapped_column(Text)
    last_json: Mapped[str] = mapped_column(Text)
    evaluated_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class BudgetEventRow(Base):
    """A line of a project's budget history: settings, crossings, delivery attempts."""

    __tablename__ = "budget_events"
    __table_args__ = (Index("ix_budget_events_project_id", "project_id", "id"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    time_ms: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    data_json: Mapped[str] = mapped_column(Text)


class BudgetNotificationRow(Base):
    """A budget notification to one target (the outbox): written in the same transaction
    as the crossing that causes it, marked when its delivery ends, so a crash in between
    neither loses it nor sends it under another id."""

    __tablename__ = "budget_notifications"
    __table_args__ = (
        UniqueConstraint("notification_id", "target"),
        Index("ix_budget_notifications_status", "status"),
    )

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    budget_id: Mapped[int] = mapped_column(_BIGINT_PK, ForeignKey("budgets.id", ondelete="CASCADE"))
    notification_id: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    payload_json: Mapped[str] = mapped_column(Text)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class ProjectQuotaRow(Base):
    """A project's limits on active replicas and what they request (NULL: no limit)."""

    __tablename__ = "project_quotas"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    max_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_cpu: Mapped[float | None] = mapped_column(Double, nullable=True)
    max_memory_gb: Mapped[float | None] = mapped_column(Double, nullable=True)
    max_gpu: Mapped[float | None] = mapped_column(Double, nullable=True)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


# ---- pipeline schedules (migration 0011) -------------------------------------------------


class PipelineScheduleRow(Base):
    """A pipeline run by the server's scheduler at the ticks of a cron string (UTC).

    ``target`` is ``path.py:attr`` relative to ``MODELYARD_PIPELINES_DIR``; ``armed_at``
    is when it was created, re-enabled or given a new cron (ticks at or before it never
    fire); ``last_fire_at`` when its newest fire started; ``next_fire_at`` when one is due
    next (None while disabled).
    """

    __tablename__ = "pipeline_schedules"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text)
    cron: Mapped[str] = mapped_column(String(128))
    executor: Mapped[str] = mapped_column(String(256))
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Double)
    armed_at: Mapped[float] = mapped_column(Double)
    last_fire_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    next_fire_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class PipelineScheduleFireRow(Base):
    """One fire of a schedule: a ``modelyard pipeline run`` subprocess of the server.

    ``state``: PENDING (fire-now asked, not started yet), RUNNING, SUCCEEDED, FAILED.
    ``token_id`` names the short-lived token it ran with (revoked when it ended);
    ``message`` holds the reason or the tail of its log.
    """

    __tablename__ = "pipeline_schedule_fires"
    __table_args__ = (
        Index("ix_pipeline_schedule_fires_schedule_id", "schedule_id", "id"),
        Index("ix_pipeline_schedule_fires_state", "state"),
    )

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    schedule_id: Mapped[str] = mapped_column(
        ForeignKey("pipeline_schedules.id", ondelete="CASCADE")
    )
    trigger: Mapped[str] = mapped_column(String(16))
    tick_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    missed: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[str] = mapped_column(String(128))
    fired_at: Mapped[float] = mapped_column(Double)
    started_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    token_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")


# --- MLflow run inputs and outputs ------------------------------------------------------


class MlflowDatasetRow(Base):
    """A dataset an MLflow run read, once per experiment, name and digest.

    A dataset that names a modelyard dataset version also gets a lineage ``input`` edge;
    this row is what MLflow's ``Run.inputs`` and ``experiments/search-datasets`` return.
    """

    __tablename__ = "mlflow_datasets"
    __table_args__ = (UniqueConstraint("experiment_id", "name", "digest"),)

    id: Mapped[int] = mapped_column(_BIGINT_PK, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    digest: Mapped[str] = mapped_column(String(64))
    source_type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    dataset_schema: Mapped[str] = mapped_column(Text)
    profile: Mapped[str] = mapped_column(Text)


class MlflowRunInputRow(Base):
    """That a run read a dataset; ``tags_json`` holds the input's tags as ``[[k, v] …]``."""

    __tablename__ = "mlflow_run_inputs"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("mlflow_datasets.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    tags_json: Mapped[str] = mapped_column(Text)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class MlflowRunModelRow(Base):
    """A logged model a run read (``direction`` ``input``) or wrote (``output``, at ``step``)."""

    __tablename__ = "mlflow_run_models"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    direction: Mapped[str] = mapped_column(String(8), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
