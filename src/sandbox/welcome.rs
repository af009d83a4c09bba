//! What the sandbox tells a newcomer at start: where the page is, and two ways to propose — as
//! automation on countersign's API, and as a SOAR's 1Password integration through the Users
//! API gateway (the same example is on the page's state, where the tests run it).

use crate::sandbox::onepassword::FakeOnePassword;

/// The user the examples propose to suspend (Alice, in the sandbox's 1Password).
pub const EXAMPLE_USER: &str = "ALICE0000000000000000000AA";

/// A shell snippet that acts as a SOAR's 1Password integration would: a token by HTTP Basic,
/// then `:suspend`. It waits up to `GATEWAY_WAIT` for an Approve click; a 503 means "still
/// awaiting approval", and the same call again picks up the outcome.
pub fn gateway_example(bot: &str, version: &str, client_id: &str, client_secret: &str) -> String {
    let account = FakeOnePassword::ACCOUNT_ID;
    format!(
        "TOKEN=$(curl -sS -A 'SandboxSOAR/1.0' -u '{client_id}:{client_secret}' -d grant_type=client_credentials \
         {bot}/{version}/users/oauth2/token | sed -E 's/.*\"access_token\":\"([^\"]*)\".*/\\1/')\n\
         curl -sS -X POST -A 'SandboxSOAR/1.0' -H \"Authorization: Bearer $TOKEN\" \
         {bot}/{version}/accounts/{account}/users/{EXAMPLE_USER}:suspend"
    )
}

pub fn print(bot: &str, token: &str, gateway: &str, database_url: &str) {
    println!("countersign sandbox is running.\n");
    println!("  Open the approvals channel:  {bot}/sandbox");
    println!(
        "  Restores need two passkeys: pick an approver, \"Enroll a passkey\", open the link."
    );
    println!("  Ledger (deleted at exit):    {database_url}\n");
    println!("  Propose as automation:");
    println!(
        "    curl -sS {bot}/v1/proposals -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n      -d '{{\"action\": \"suspend\", \"user\": {{\"email\": \"alice@example.com\"}}, \"reason\": \"Impossible travel followed by vault export\", \"source\": {{\"platform\": \"sandbox\", \"confidence\": \"high\"}}}}'\n"
    );
    println!("  Or as a SOAR's 1Password integration (the Users API gateway); it waits up to 20 s");
    println!("  for an Approve click on the page, and answers 503 until one comes:");
    for line in gateway.lines() {
        println!("    {line}");
    }
    println!("\n  Press Ctrl-C to stop.");
}
