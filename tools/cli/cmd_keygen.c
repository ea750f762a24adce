/* splitwire keygen: a key pair for protocol version 2. */
#include <stdio.h>
#include <string.h>

#include "tools/cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: splitwire keygen NAME\n"
               "\n"
               "Writes a new X25519 key pair for the authenticated wire protocol:\n"
               "NAME.key, the private key (mode 0600; give it to the process that\n"
               "owns it and to nobody else), and NAME.pub, the public key (give it to\n"
               "the peers). Existing files are never overwritten. Prints the public\n"
               "key.\n");
}

int spw_cli_keygen(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-' || !argv[1][0]) {
        usage(stderr);
        return 2;
    }
    char priv[4096], pub[4096], hex[65];
    if (snprintf(priv, sizeof(priv), "%s.key", argv[1]) >= (int)sizeof(priv) ||
        snprintf(pub, sizeof(pub), "%s.pub", argv[1]) >= (int)sizeof(pub)) {
        fprintf(stderr, "splitwire keygen: name too long\n");
        return 2;
    }
    int rc = spw_net_keygen(priv, pub, hex);
    if (rc)
        return spw_cli_fail(rc, "keygen");
    printf("%s\n", hex);
    fprintf(stderr, "splitwire keygen: wrote %s (private, mode 0600) and %s\n", priv, pub);
    return 0;
}
