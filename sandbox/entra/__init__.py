"""The sandbox's stand-in for Microsoft Entra ID (login.microsoftonline.com), served over HTTPS on loopback.

Import each name from the module that owns it:

- `stand_in`: `EntraStandIn`, the routes (paths as Entra's) and the helpers tests and the sandbox call;
- `discovery`: OpenID metadata (v2 and v1) and tenant segments;
- `tokens`: the token endpoint (client credentials, authorization code) and the claims of every token;
- `signin`: the authorize endpoint and its sign-in page;
- `redirect_uris`: which redirect URIs an SSO app may use, the app's own callback included;
- `codes`: authorization codes, single-use and short-lived;
- `signing`: the signing key, JWKS, minting (also deliberately broken tokens) and bearer token checks;
- `responses`: Entra-shaped JSON errors and the page headers.
"""
