// A real OpenID provider (the certified `oidc-provider` library) configured like FranceConnect v2,
// for entsync's integration tests: authorization-code flow with PKCE (S256), `acr_values=eidas1`,
// ID tokens and a *signed* userinfo JWT (RS256), RP-initiated logout.
//
// Only the sign-in screen is ours (any real deployment writes its own): a form asking for the
// account id. Accounts and their claims are read from the JSON file named by FC_ACCOUNTS at each
// request, so a test sets a person's claims by writing that file. Two test-only fields of an
// account (never sent as claims) make the provider misbehave as an attacker or a weaker one
// would: `_acr` (the level the sign-in gets, default eidas1) and `_forge_userinfo` (its userinfo
// JWT is signed with a key that is not in the provider's JWKS).
//
// Environment: FC_PORT, FC_CLIENT_ID, FC_CLIENT_SECRET, FC_REDIRECT_URI, FC_LOGOUT_REDIRECT_URI,
// FC_ACCOUNTS, FC_ID_TOKEN_TTL (seconds, default 3600), FC_CODE_TTL (seconds an authorization code
// may be redeemed in, default 60). Prints "listening <issuer>" when ready.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const port = Number(env('FC_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const accountsFile = env('FC_ACCOUNTS');
const accounts = () => JSON.parse(readFileSync(accountsFile, 'utf8'));

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'fc-test-1', use: 'sig', alg: 'RS256' };
// Not published: what a forged userinfo is signed with (under the published key's id).
const { privateKey: forgerKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicClaims = (claims) => Object.fromEntries(Object.entries(claims).filter(([k]) => !k.startsWith('_')));

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('FC_CLIENT_ID'),
    client_secret: env('FC_CLIENT_SECRET'),
    redirect_uris: [env('FC_REDIRECT_URI')],
    post_logout_redirect_uris: [env('FC_LOGOUT_REDIRECT_URI')],
    id_token_signed_response_alg: 'RS256',
    userinfo_signed_response_alg: 'RS256',
    token_endpoint_auth_method: 'client_secret_post',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(24).toString('hex')] },
  acrValues: ['eidas1'],
  // FranceConnect v2 asks for claims one scope each.
  scopes: ['openid', 'given_name', 'family_name', 'birthdate', 'gender', 'birthplace', 'birthcountry', 'preferred_username', 'email'],
  claims: {
    openid: ['sub'],
    given_name: ['given_name'],
    family_name: ['family_name'],
    birthdate: ['birthdate'],
    gender: ['gender'],
    birthplace: ['birthplace'],
    birthcountry: ['birthcountry'],
    preferred_username: ['preferred_username'],
    email: ['email'],
  },
  features: {
    devInteractions: { enabled: false },
    jwtUserinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  ttl: { IdToken: Number(env('FC_ID_TOKEN_TTL', '3600')), AuthorizationCode: Number(env('FC_CODE_TTL', '60')) },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, id) => {
    const claims = accounts()[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...publicClaims(claims) }) };
  },
});
provider.proxy = false;

const page = (uid, error) => `<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>FranceConnect (test)</title></head><body><main><h1>Connexion FranceConnect (test)</h1>
${error ? `<p role="alert">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}"><label for="login">Identifiant</label>
<input id="login" name="login" autocomplete="off"><button type="submit">Se connecter</button>
</form></main></body></html>`;

const readForm = (req) => new Promise((resolve, reject) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => resolve(new URLSearchParams(body)));
  req.on('error', reject);
});

const handler = provider.callback();

const b64url = (data) => Buffer.from(data).toString('base64url');

// A userinfo JWT with the right claims, issuer and audience, signed with the forger's key.
const forgedUserinfo = (accountId, claims) => {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'RS256', kid: signingKey.kid, typ: 'JWT' }));
  const payload = b64url(JSON.stringify({
    sub: accountId, ...publicClaims(claims), iss: issuer, aud: env('FC_CLIENT_ID'), iat: now, exp: now + 300,
  }));
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), forgerKey).toString('base64url');
  return `${header}.${payload}.${signature}`;
};

const forgedFor = async (req) => {
  const auth = req.headers.authorization || '';
  if (!req.url.startsWith('/me') || !auth.startsWith('Bearer ')) return undefined;
  const token = await provider.AccessToken.find(auth.slice(7));
  const claims = token && accounts()[token.accountId];
  return claims && claims._forge_userinfo ? forgedUserinfo(token.accountId, claims) : undefined;
};

createServer(async (req, res) => {
  const match = /^\/interaction\/([^/?]+)/.exec(req.url);
  if (!match) {
    const forged = await forgedFor(req).catch(() => undefined);
    if (forged) {
      res.setHeader('content-type', 'application/jwt; charset=utf-8');
      return res.end(forged);
    }
    return handler(req, res);
  }
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'consent') {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      return await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    if (req.method === 'GET') {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      return res.end(page(details.uid));
    }
    const login = (await readForm(req)).get('login') || '';
    if (!accounts()[login]) {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      return res.end(page(details.uid, 'Compte inconnu'));
    }
    const acr = accounts()[login]._acr || 'eidas1';
    return await provider.interactionFinished(req, res, { login: { accountId: login, acr } }, { mergeWithLastSubmission: false });
  } catch (err) {
    res.statusCode = 500;
    res.end(String(err));
  }
}).listen(port, '127.0.0.1', () => { console.log(`listening ${issuer}`); });
