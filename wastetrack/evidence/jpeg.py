"""Whether a JPEG holds its whole image. Pillow's decoder (libjpeg) only warns when the coded
data stops before the last block, at a marker put there (an end-of-image after half the file,
say), and fills the rest grey; it refuses only a file that runs out. libjpeg-turbo through
simplejpeg (MIT) takes its warnings as errors (`strict`). The image is decoded at an eighth of
its size: every coded block is read all the same, into a buffer 64 times smaller."""


def is_whole(content: bytes) -> bool:
    """True when every block of the JPEG's (first) image decodes without a warning."""
    # Imported by the first JPEG a process checks: simplejpeg brings numpy, some 20 MB in a
    # worker, and most workers never take a photo.
    import simplejpeg

    try:
        colour = simplejpeg.decode_jpeg_header(content)[2]
        simplejpeg.decode_jpeg(
            content,
            # The output libjpeg converts to at least cost: CMYK (and YCCK) convert to no grey.
            colorspace="CMYK" if colour in ("CMYK", "YCCK") else "GRAY",
            min_height=1,
            min_width=1,
            min_factor=8,
            strict=True,
        )
    except ValueError:
        return False
    return True
