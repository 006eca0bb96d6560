// A second real OpenID provider for backstage-mcp's end-to-end tests:
// node-oidc-provider (pinned in package-lock.json) with the device flow,
// refresh tokens, revocation and resource indicators, issuing JWT access
// tokens whose audience is the MCP server's resource. The sign-in pages
// are minimal HTML forms that a test fills in as a person would.
//
// usage: node server.mjs CONFIG.json
// CONFIG: {"audience": URL, "scopes": [..], "accessTokenTTL": seconds,
//          "clientId": ID, "users": [{"id","username","password","email","name","groups"}]}
// It listens on 127.0.0.1 (a free port) and prints "ISSUER=<url>" on stdout.
// For tests on loopback only: everything is in memory.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = new Map(cfg.users.map((u) => [u.id, u]));
const byName = new Map(cfg.users.map((u) => [u.username, u]));

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: randomBytes(8).toString('hex') };

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: cfg.clientId,
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token', 'authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    async findAccount(_ctx, id) {
      const u = users.get(id);
      if (!u) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, email: u.email, email_verified: true, name: u.name }) };
    },
    async extraTokenClaims(_ctx, token) {
      const u = users.get(token.accountId);
      if (token.kind !== 'AccessToken' || !u) return undefined;
      return { email: u.email, name: u.name, groups: u.groups || [] };
    },
    ttl: {
      AccessToken: cfg.accessTokenTTL, DeviceCode: 600, RefreshToken: 3600,
      Grant: 3600, Session: 3600, Interaction: 600, IdToken: 3600,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      deviceFlow: {
        enabled: true,
        async userCodeInputSource(ctx, form, _out, err) {
          ctx.body = page('Enter your code', `${err ? `<p>${esc(err.message)}</p>` : ''}${form}`);
        },
        async userCodeConfirmSource(ctx, form, _client, _info, userCode) {
          ctx.body = page('Confirm', `<p>Code ${esc(userCode)}</p>${form}`);
        },
        async successSource(ctx) {
          ctx.body = page('Sign-in complete', '<p>You can close this page.</p>');
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => cfg.audience,
        useGrantedResource: () => true,
        getResourceServerInfo(_ctx, resource) {
          if (resource !== cfg.audience) throw new errors.InvalidTarget();
          return {
            scope: cfg.scopes.join(' '),
            audience: cfg.audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: cfg.accessTokenTTL,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });

  const readForm = (req) => new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (c) => { body += c; if (body.length > 65536) reject(new Error('form too large')); });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });

  // The sign-in and consent page of an interaction: one form, username and
  // password; a right password signs in and grants what was asked.
  async function interaction(req, res, uid) {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    if (req.method === 'GET') {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(page('Sign in', `<form method="post" action="/interaction/${esc(uid)}"><input name="username"><input name="password" type="password"></form>`));
      return;
    }
    const form = await readForm(req);
    const u = byName.get(form.get('username'));
    if (!u || u.password !== form.get('password')) {
      res.statusCode = 403;
      res.end(page('Sign-in refused', '<p>wrong username or password</p>'));
      return;
    }
    const grant = new provider.Grant({ accountId: u.id, clientId: details.params.client_id });
    grant.addOIDCScope(String(details.params.scope || 'openid').split(' ').filter((s) => ['openid', 'offline_access', 'email', 'profile'].includes(s)).join(' '));
    grant.addResourceScope(cfg.audience, cfg.scopes.join(' '));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { login: { accountId: u.id }, consent: { grantId } }, { mergeWithLastSubmission: false });
  }

  const callback = provider.callback();
  server.on('request', (req, res) => {
    const m = new URL(req.url, issuer).pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)$/);
    if (!m) {
      callback(req, res);
      return;
    }
    interaction(req, res, m[1]).catch((err) => {
      console.error('interaction:', err);
      res.statusCode = 400;
      res.end(page('Error', `<p>${esc(err.message)}</p>`));
    });
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error:', err));
  process.stdout.write(`ISSUER=${issuer}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
