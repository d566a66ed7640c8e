// A real third-party OpenID provider for the gateway's tests: `oidc-provider` (OpenID Certified, by
// panva), configured from the environment, issuing RFC 9068 JWT access tokens (`typ: at+jwt`) to
// OAuth 2.0 clients by the client credentials grant (RFC 6749 section 4.4), with the audience chosen
// by an RFC 8707 resource indicator. Nothing here is ours but this configuration: discovery, JWKS,
// client authentication, token format and signing are the library's.
//
// Environment (all but OIDC_JWKS_FILE and OIDC_CLIENTS optional):
//   OIDC_HOST               address to listen on (default 127.0.0.1)
//   OIDC_PORT               port (default 0: any free port; the chosen one is printed, see below)
//   OIDC_ISSUER             issuer identifier (default http://<host>:<bound port>)
//   OIDC_AUDIENCE           `aud` of tokens for the gateway, the default resource (default familyctx-gateway)
//   OIDC_OTHER_RESOURCES    comma-separated absolute URIs of other APIs; a token requested with
//                           `resource=<uri>` has `aud: <uri>` (used to test audience checks)
//   OIDC_JWKS_FILE          path to a private JWK set (RFC 7517): the provider's signing keys, each with
//                           a `kid`; EC P-256 keys sign ES256, RSA keys RS256
//   OIDC_CLIENTS            JSON list of {client_id, client_secret, roles?: [str], organisation?: str,
//                           name?: str, access_token_alg?: "ES256" | "RS256" | ...}; roles, organisation
//                           and name are added to that client's access tokens
//   OIDC_ACCESS_TOKEN_TTL   access token lifetime in seconds (default 300)
//
// When listening, prints one JSON line to stdout: {"ready": true, "issuer": "...", "port": N}.
// Configuration errors: a message on stderr and exit status 2.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

function fail(message) {
  process.stderr.write(`thirdparty-oidc: ${message}\n`);
  process.exit(2);
}

function readJson(what, text) {
  try {
    return JSON.parse(text);
  } catch (err) {
    return fail(`${what} is not valid JSON (${err.message})`);
  }
}

function loadKeys() {
  const path = process.env.OIDC_JWKS_FILE;
  if (!path) fail('OIDC_JWKS_FILE must name a private JWK set file');
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    fail(`cannot read OIDC_JWKS_FILE ${path} (${err.code})`);
  }
  const jwks = readJson('OIDC_JWKS_FILE', text);
  if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) fail('OIDC_JWKS_FILE must hold {"keys": [...]}');
  for (const key of jwks.keys) {
    if (typeof key.kid !== 'string' || !key.kid) fail('every key in OIDC_JWKS_FILE needs a kid');
    if (!key.d) fail(`key ${key.kid} in OIDC_JWKS_FILE is not a private key`);
  }
  return jwks;
}

function loadClients() {
  const raw = process.env.OIDC_CLIENTS;
  if (!raw) fail('OIDC_CLIENTS must be a JSON list of clients');
  const clients = readJson('OIDC_CLIENTS', raw);
  if (!Array.isArray(clients) || clients.length === 0) fail('OIDC_CLIENTS must be a non-empty JSON list');
  return clients.map((c) => {
    if (typeof c.client_id !== 'string' || typeof c.client_secret !== 'string') {
      fail('each client in OIDC_CLIENTS needs a client_id and a client_secret (strings)');
    }
    return {
      client_id: c.client_id,
      client_secret: c.client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      familyctx_roles: c.roles ?? [],
      familyctx_organisation: c.organisation ?? '',
      familyctx_name: c.name ?? '',
      familyctx_access_token_alg: c.access_token_alg ?? 'ES256',
    };
  });
}

const host = process.env.OIDC_HOST || '127.0.0.1';
const port = Number.parseInt(process.env.OIDC_PORT || '0', 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail('OIDC_PORT must be a port number (0-65535)');
const audience = process.env.OIDC_AUDIENCE || 'familyctx-gateway';
const ttl = Number.parseInt(process.env.OIDC_ACCESS_TOKEN_TTL || '300', 10);
if (!Number.isInteger(ttl) || ttl <= 0) fail('OIDC_ACCESS_TOKEN_TTL must be a positive number of seconds');
const GATEWAY_RESOURCE = 'urn:familyctx:gateway';
const otherResources = new Set(
  (process.env.OIDC_OTHER_RESOURCES || '').split(',').map((s) => s.trim()).filter(Boolean),
);
const jwks = loadKeys();
const clients = loadClients();
const hasRsaKey = jwks.keys.some((k) => k.kty === 'RSA');

const server = createServer();
server.on('error', (err) => fail(`cannot listen on ${host}:${port} (${err.code})`));
server.listen(port, host, () => {
  const bound = server.address().port;
  const issuer = process.env.OIDC_ISSUER || `http://${host}:${bound}`;
  const provider = new Provider(issuer, {
    clients,
    jwks,
    // No browser flows are used, but the provider wants its cookie signing keys set.
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // ID tokens are never issued here, but the provider checks its default algorithm has a key.
    clientDefaults: { id_token_signed_response_alg: hasRsaKey ? 'RS256' : 'ES256' },
    extraClientMetadata: {
      properties: ['familyctx_roles', 'familyctx_organisation', 'familyctx_name', 'familyctx_access_token_alg'],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A client that names no resource gets a token for the gateway.
        defaultResource: async () => GATEWAY_RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator, client) => {
          const known = resourceIndicator === GATEWAY_RESOURCE || otherResources.has(resourceIndicator);
          if (!known) throw new errors.InvalidTarget();
          return {
            scope: 'familyctx',
            audience: resourceIndicator === GATEWAY_RESOURCE ? audience : resourceIndicator,
            accessTokenTTL: ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: client.familyctx_access_token_alg } },
          };
        },
      },
    },
    // Top-level claims of the JWT access token (they never replace the provider's own: iss, sub, aud,
    // exp, iat, jti, client_id, scope).
    extraTokenClaims: async (ctx, token) => {
      const client = await ctx.oidc.provider.Client.find(token.clientId);
      const claims = { roles: client.familyctx_roles };
      if (client.familyctx_organisation) claims.organisation = client.familyctx_organisation;
      if (client.familyctx_name) claims.name = client.familyctx_name;
      return claims;
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ ready: true, issuer, port: bound })}\n`);
});

// Stop at once (keep-alive connections would hold server.close() open), with status 0.
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
