"""Pieces shared by ``effects``, ``upscaler``, ``imaging`` and ``studio`` that belong to none of them:
request-field declarations and their coercion (:mod:`common.fields`)."""
