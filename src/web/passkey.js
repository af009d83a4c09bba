// The passkey pages' one script: WebAuthn in the browser, everything decided by the server.
"use strict";

const b64 = {
  decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
  },
  encode(buffer) {
    let raw = "";
    for (const byte of new Uint8Array(buffer)) raw += String.fromCharCode(byte);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body ?? {}),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.detail || `countersign answered ${response.status}`);
  return answer;
}

async function enroll(base) {
  const { publicKey } = await post(`${base}/options`);
  await register(base, publicKey);
  return "Your passkey is registered. You can close this page.";
}

async function register(base, publicKey) {
  publicKey.challenge = b64.decode(publicKey.challenge);
  publicKey.user.id = b64.decode(publicKey.user.id);
  for (const c of publicKey.excludeCredentials ?? []) c.id = b64.decode(c.id);
  const credential = await navigator.credentials.create({ publicKey });
  await post(`${base}/finish`, {
    id: credential.id,
    rawId: b64.encode(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: b64.encode(credential.response.attestationObject),
      clientDataJSON: b64.encode(credential.response.clientDataJSON),
    },
    extensions: credential.getClientExtensionResults(),
  });
}

async function assertion(publicKey) {
  publicKey.challenge = b64.decode(publicKey.challenge);
  for (const c of publicKey.allowCredentials ?? []) c.id = b64.decode(c.id);
  const answer = await navigator.credentials.get({ publicKey });
  return {
    id: answer.id,
    rawId: b64.encode(answer.rawId),
    type: answer.type,
    response: {
      authenticatorData: b64.encode(answer.response.authenticatorData),
      clientDataJSON: b64.encode(answer.response.clientDataJSON),
      signature: b64.encode(answer.response.signature),
      userHandle: answer.response.userHandle ? b64.encode(answer.response.userHandle) : null,
    },
    extensions: answer.getClientExtensionResults(),
  };
}

async function add(base) {
  const { publicKey } = await post(`${base}/options`);
  const proved = await post(`${base}/prove`, await assertion(publicKey));
  await register(base, proved.publicKey);
  return "Your new passkey is registered. You can close this page.";
}

async function vote(base) {
  const { publicKey } = await post(`${base}/options`);
  const answer = await post(`${base}/finish`, await assertion(publicKey));
  return answer.outcome;
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("go");
  const outcome = document.getElementById("outcome");
  if (!button) return;
  button.addEventListener("click", async () => {
    button.disabled = true;
    outcome.textContent = "Waiting for your passkey…";
    const base = location.pathname.replace(/\/$/, "");
    try {
      const run = { enroll, add, vote }[button.dataset.kind];
      outcome.textContent = await run(base);
    } catch (error) {
      outcome.textContent = `Nothing was recorded: ${error.message}`;
      button.disabled = false;
    }
  });
});
