"""Authentication adapters: JWT verification with a cache, and a dev token issuer."""

from __future__ import annotations

from adapters.auth.jwt_verifier import JwtTokenVerifier, issue_token

__all__ = ["JwtTokenVerifier", "issue_token"]
