/* md_frame: the framing of the control channel. A frame is a 4-byte
 * big-endian payload length followed by that many payload bytes (one
 * serialised Envelope, see md_wire.h). A length of zero, or over the limit,
 * is a protocol error: the stream cannot be resynchronised, so the
 * connection ends.
 *
 * The decoder takes bytes in whatever chunks they come off TLS and hands out
 * one complete frame at a time. It checks the length against its limit as
 * soon as the 4 header bytes are in, before allocating anything; it never
 * holds more than the header and one frame's payload, and it grows its
 * buffer only as payload bytes actually arrive (a peer that announces 1 MiB
 * and sends 10 bytes costs 10 bytes' worth, not 1 MiB). A frame that arrives
 * whole inside one chunk is handed out in place, without a copy.
 *
 *   md_frame_decoder *d;
 *   md_frame_decoder_new(0, &d);
 *   while (len > 0) {                            // for each chunk read
 *     const uint8_t *f; size_t flen, used;
 *     int r = md_frame_decoder_feed(d, p, len, &used, &f, &flen);
 *     if (r < 0) { close the connection; break; }
 *     p += used; len -= used;
 *     if (r == 1) handle(f, flen);               // f valid until the next call on d
 *   }
 */
#ifndef MD_FRAME_H
#define MD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define MD_FRAME_HDR_LEN 4
#define MD_FRAME_MAX (1024u * 1024u) /* payload bytes; the protocol's limit */

/* Errors, besides -ENOMEM and -EINVAL (bad arguments):
 *   -EMSGSIZE  the length prefix is over the limit
 *   -EBADMSG   the length prefix is zero
 * md_wire_strerror() names them. */

typedef struct md_frame_decoder md_frame_decoder;

/* New decoder accepting payloads of 1..max bytes; max 0 means MD_FRAME_MAX,
 * more than MD_FRAME_MAX is -EINVAL. 0 or -errno. */
int md_frame_decoder_new(uint32_t max, md_frame_decoder **out);
/* Free the decoder and any partial frame. NULL is allowed. */
void md_frame_decoder_free(md_frame_decoder *d);
/* Forget any partial frame and a previous error: ready for a new stream. */
void md_frame_decoder_reset(md_frame_decoder *d);

/* Consume bytes from data[0..len) until one frame is complete or the input
 * runs out; *used says how many were consumed.
 *   1  a frame is complete: *frame and *frame_len are its payload, valid until
 *      the next call on this decoder (and while `data` is, as it may point
 *      into it). Call again with the rest of the input.
 *   0  all input consumed, the frame is still incomplete (or none began).
 *   <0 -EMSGSIZE, -EBADMSG, -ENOMEM. The error sticks: later calls return it
 *      again, consuming nothing, until md_frame_decoder_reset(). */
int md_frame_decoder_feed(md_frame_decoder *d, const void *data, size_t len, size_t *used,
                          const uint8_t **frame, size_t *frame_len);

/* Bytes of the frame in progress received so far, header included (0
 * between frames). A peer that stops mid-frame leaves this above 0. */
size_t md_frame_decoder_pending(const md_frame_decoder *d);
/* Bytes of memory the decoder holds for payload right now. */
size_t md_frame_decoder_held(const md_frame_decoder *d);

/* Use these instead of realloc()/free() for payload buffers (tests count
 * allocations with it). Both NULL restores the defaults. Only while the
 * decoder holds no buffer (right after new or reset): else -EBUSY. */
int md_frame_decoder_set_allocator(md_frame_decoder *d, void *(*realloc_fn)(void *, size_t),
                                   void (*free_fn)(void *));

/* Write the length prefix for a payload of `len` bytes. 0, or -EBADMSG
 * (len 0) / -EMSGSIZE (len > MD_FRAME_MAX). */
int md_frame_put_header(uint8_t hdr[MD_FRAME_HDR_LEN], size_t len);
/* Read a length prefix (no checks). */
uint32_t md_frame_get_header(const uint8_t hdr[MD_FRAME_HDR_LEN]);

/* One frame (header + payload) in a new malloc()ed buffer; free() it.
 * 0, -EBADMSG, -EMSGSIZE or -ENOMEM. */
int md_frame_encode(const void *payload, size_t len, uint8_t **out, size_t *out_len);

#endif
