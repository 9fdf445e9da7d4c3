"""GET /v1/presets: the named specs a training job accepts in place of a spec object."""

from __future__ import annotations

from fastapi import APIRouter

from nn_core.presets import PRESETS, preset_spec
from service.api.errors import ERROR_RESPONSES
from service.auth import PrincipalDep
from service.schemas.presets import PresetList, PresetOut

router = APIRouter(prefix="/v1/presets", tags=["presets"])


@router.get("", response_model=PresetList, responses=ERROR_RESPONSES)
def list_presets(principal: PrincipalDep) -> PresetList:
    """Every preset with the spec it stands for; submit one as `{"spec": "spam-mlp", ...}`
    with `epochs`, `batch_size`, `learning_rate` or `seed` to override its values."""
    return PresetList(
        presets=[
            PresetOut(name=p.name, description=p.description, spec=preset_spec(p.name))
            for p in PRESETS.values()
        ]
    )
