"""The provider's signing key: one RSA 2048 key (RS256), generated once and kept in the state directory.

The private JWK (RFC 7517) is stored as ``<state_dir>/signing-key.json`` with mode 0600 so that a
restarted provider keeps its ``kid`` and tokens issued before the restart stay valid. The ``kid`` is the
key's RFC 7638 thumbprint.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from joserfc.jwk import KeySet, RSAKey

from familyctx_oidc.errors import SigningKeyError

SIGNING_KEY_FILE = "signing-key.json"
SIGNING_ALGORITHM = "RS256"


def load_or_create_signing_key(state_dir: Path) -> RSAKey:
    """Return the private signing key kept in ``state_dir``, creating it (mode 0600) on first use.

    Raises :class:`SigningKeyError` when the file exists but is readable by group or others, is not a
    private RSA JWK, or cannot be written (also when ``state_dir`` cannot be created, e.g. is a file).
    """
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SigningKeyError(
            f"cannot use {state_dir} as the state directory: {exc.strerror or type(exc).__name__}"
        ) from exc
    path = state_dir / SIGNING_KEY_FILE
    if not path.exists():
        key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": SIGNING_ALGORITHM}, auto_kid=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        except OSError as exc:
            raise SigningKeyError(f"cannot create the signing key in {state_dir}: {exc.strerror}") from exc
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(key.as_dict(private=True), handle)
            return key
    return _read_key(path)


def _read_key(path: Path) -> RSAKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SigningKeyError(
            f"{path} has permissions {mode:o}; the private signing key must be readable by its owner "
            f"only: run `chmod 600 {path}`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        key = RSAKey.import_key(data)
    except (OSError, ValueError) as exc:
        raise SigningKeyError(f"{path} is not a readable RSA JWK; delete it to generate a new key") from exc
    if not key.is_private:
        raise SigningKeyError(f"{path} holds a public key only; delete it to generate a new key")
    key.ensure_kid()
    return key


def public_jwks(key: RSAKey) -> dict[str, list[dict[str, object]]]:
    """The JWK Set document (RFC 7517 section 5) published at ``/jwks.json``: public parts only."""
    return KeySet([key]).as_dict(private=False)  # type: ignore[return-value]
