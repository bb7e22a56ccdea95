"""The catalogue's shared field types: providers, name and connection-id patterns, and the strict base model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Provider = Literal["aws", "gcp", "azure"]

# Cloud region names as each provider spells them.
CLOUD_REGION_PATTERNS: dict[str, str] = {
    "aws": r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$",  # us-west-2
    "gcp": r"^[a-z]+-[a-z]+\d+$",  # europe-west1
    "azure": r"^[a-z]+\d*$",  # eastus, southeastasia, westus2
}
# Bucket (S3, GCS) and container (Azure Blob) naming rules, 3 to 63 characters.
BUCKET_PATTERNS: dict[str, str] = {
    "aws": r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
    "gcp": r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$",
    "azure": r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
}
HOSTNAME = r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")]
ConnId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
Hostname = Annotated[str, StringConstraints(pattern=HOSTNAME)]
Strategy = Literal["automatic", "graceful", "immediate"]
Verification = Literal["provider_checksum", "read_back"]
Percent = Annotated[int, Field(ge=0, le=100)]


class StrictModel(BaseModel):
    """A catalogue section: unknown fields are refused, and a loaded value never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, regex_engine="python-re")
