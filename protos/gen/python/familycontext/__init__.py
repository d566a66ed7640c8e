"""Generated from protos/familycontext (do not edit; run make protos)."""
