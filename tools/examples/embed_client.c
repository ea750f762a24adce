/* Embedding the splitwire client: classify images through a server.
 *
 *   cc embed_client.c $(pkg-config --cflags --libs splitwire) -o embed_client
 *   ./embed_client BUNDLE_DIR SERVER_IP:PORT IMAGE...
 */
#include <stdio.h>

#include <splitwire/splitwire.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s BUNDLE_DIR SERVER_IP:PORT IMAGE...\n", argv[0]);
        return 2;
    }
    spw_client_config cfg = {.bundle_dir = argv[1], .topk = 3};
    cfg.net.transport = SPW_NET_UDP;
    cfg.net.local = "0.0.0.0:0";
    cfg.net.peer = argv[2];

    spw_client *client;
    int rc = spw_client_open(&cfg, &client);
    if (rc < 0) {
        fprintf(stderr, "client: %s: %s\n", spw_strerror(rc), spw_error_detail());
        return 1;
    }
    for (int i = 3; i < argc; i++) {
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
