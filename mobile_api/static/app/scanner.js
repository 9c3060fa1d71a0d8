// The camera as a QR reader: the browser's BarcodeDetector where it has one, otherwise the
// vendored jsQR (/static/vendor/jsQR.js) on the video's frames.
export class Scanner {
  constructor(video, canvas) {
    this.video = video;
    this.canvas = canvas;
    this.stream = null;
    this.running = false;
    this.run = 0; // each start's number: a reading loop or a camera of an earlier one stops
  }

  async start(onCode) {
    this.stop(); // one camera and one reading loop at a time
    const run = this.run;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: 'environment', width: { ideal: 1280 } },
        audio: false,
      });
    } catch (error) {
      if (run !== this.run) return; // stopped meanwhile: no camera was wanted any more
      throw error;
    }
    if (run !== this.run) { // stopped (or started again) while the camera opened
      stream.getTracks().forEach((track) => track.stop());
      return;
    }
    this.stream = stream;
    this.video.srcObject = stream;
    try {
      await this.video.play();
    } catch (error) {
      if (run !== this.run) return; // stopping cleared the video while it started to play
      throw error;
    }
    if (run !== this.run) return;
    let detector = null;
    if ('BarcodeDetector' in window) {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (formats.includes('qr_code')) detector = new window.BarcodeDetector({ formats: ['qr_code'] });
    }
    this.reader = detector ? 'BarcodeDetector' : 'jsQR';
    this.running = true;
    const context = this.canvas.getContext('2d', { willReadFrequently: true });
    const tick = async () => {
      if (!this.running || run !== this.run) return;
      const { videoWidth: width, videoHeight: height } = this.video;
      let text = null;
      if (width && height) {
        if (detector) {
          const found = await detector.detect(this.video).catch(() => []);
          if (found.length) text = found[0].rawValue;
        } else {
          this.canvas.width = width;
          this.canvas.height = height;
          context.drawImage(this.video, 0, 0, width, height);
          const image = context.getImageData(0, 0, width, height);
          const found = window.jsQR(image.data, width, height, { inversionAttempts: 'dontInvert' });
          if (found && found.data) text = found.data;
        }
      }
      if (run !== this.run) return; // stopped while this frame was read
      if (text) {
        this.stop();
        onCode(text);
        return;
      }
      setTimeout(tick, 120);
    };
    tick();
  }

  stop() {
    this.run += 1;
    this.running = false;
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.video.srcObject = null;
  }
}
