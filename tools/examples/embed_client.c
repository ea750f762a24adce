/* Embedding the splitwire client: classify images through a server.
 *
 *   cc embed_client.c $(pkg-config --cflags --libs splitwire) -o embed_client
 *   ./embed_client BUNDLE_DIR SERVER_IP:PORT SERVER.pub IMAGE...
 *
 * SERVER.pub is the server's public key (`splitwire keygen NAME` made it
 * beside NAME.key, which `splitwire serve --key` reads).
 */
#include <stdio.h>

#include <splitwire/splitwire.h>

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s BUNDLE_DIR SERVER_IP:PORT SERVER.pub IMAGE...\n", argv[0]);
        return 2;
    }
    uint8_t server_pub[32];
    int rc = spw_net_key_load_public(argv[3], server_pub);
    if (rc < 0) {
        fprintf(stderr, "%s: %s: %s\n", argv[3], spw_strerror(rc), spw_error_detail());
        return 1;
    }
    spw_client_config cfg = {.bundle_dir = argv[1], .topk = 3};
    cfg.net.transport = SPW_NET_UDP;
    cfg.net.local = "0.0.0.0:0";
    cfg.net.peer = argv[2];
    cfg.net.server_public_key = server_pub; /* every frame sealed for that server */

    spw_client *client;
    rc = spw_client_open(&cfg, &client);
    if (rc < 0) {
        fprintf(stderr, "client: %s: %s\n", spw_strerror(rc), spw_error_detail());
        return 1;
    }
    for (int i = 4; i < argc; i++) {
        spw_image img;
        spw_result res;
        if ((rc = spw_image_load(argv[i], &img)) < 0) {
            fprintf(stderr, "%s: %s\n", argv[i], spw_error_detail());
            continue; /* an unreadable image does not stop the run */
        }
        rc = spw_client_classify(client, &img, &res);
        spw_image_release(&img);
        if (rc < 0) {
            fprintf(stderr, "%s: %s\n", argv[i], spw_strerror(rc));
            continue;
        }
        printf("%s: class %d (%.1f%%), %zu bytes, %.2f ms\n", argv[i], res.top[0].label,
               100.0 * res.top[0].prob, res.bytes, res.ms_total);
    }
    spw_client_close(client);
    return 0;
}
