/** Constructors of Tencent's message elements, the `body` of a send, including those made from uploads. */

import type {
  CustomElem, FaceElem, FileElem, ImageElem, LocationElem, SoundElem, TextElem, Uploaded, VideoFileElem,
} from './protocol.js';

/** Tencent's `Download_Flag`: download from the URL. */
const DOWNLOAD_FROM_URL = 2;

export function text(text: string): TextElem {
  return { MsgType: 'TIMTextElem', MsgContent: { Text: text } };
}

export function face(index: number, data: string): FaceElem {
  return { MsgType: 'TIMFaceElem', MsgContent: { Index: index, Data: data } };
}

export function location(desc: string, latitude: number, longitude: number): LocationElem {
  return { MsgType: 'TIMLocationElem', MsgContent: { Desc: desc, Latitude: latitude, Longitude: longitude } };
}

export function custom(data: string, desc = '', ext = '', sound = ''): CustomElem {
  return { MsgType: 'TIMCustomElem', MsgContent: { Data: data, Desc: desc, Ext: ext, Sound: sound } };
}

/** An image element from an upload of `type=image` (the server fills in what it measured). */
export function image(up: Uploaded): ImageElem {
  return {
    MsgType: 'TIMImageElem',
    MsgContent: { UUID: up.UUID, ImageFormat: up.ImageFormat ?? 255, ImageInfoArray: up.ImageInfoArray ?? [] },
  };
}

export function sound(up: Uploaded, seconds: number): SoundElem {
  return {
    MsgType: 'TIMSoundElem',
    MsgContent: { Url: up.URL, UUID: up.UUID, Size: up.Size, Second: seconds, Download_Flag: DOWNLOAD_FROM_URL },
  };
}

export function file(up: Uploaded, fileName = up.FileName): FileElem {
  return {
    MsgType: 'TIMFileElem',
    MsgContent: {
      Url: up.URL, UUID: up.UUID, FileSize: up.Size, FileName: fileName, Download_Flag: DOWNLOAD_FROM_URL,
    },
  };
}

/** A video element from an upload of `type=video`, with an optional thumbnail uploaded as `type=image`. */
export function video(up: Uploaded, seconds: number, format: string, thumb?: Uploaded): VideoFileElem {
  const t = thumb?.ImageInfoArray?.[0];
  return {
    MsgType: 'TIMVideoFileElem',
    MsgContent: {
      VideoUrl: up.URL, VideoUUID: up.UUID, VideoSize: up.Size, VideoSecond: seconds, VideoFormat: format,
      VideoDownloadFlag: DOWNLOAD_FROM_URL,
      ThumbUrl: thumb?.URL ?? '', ThumbUUID: thumb?.UUID ?? '', ThumbSize: thumb?.Size ?? 0,
      ThumbWidth: t?.Width ?? 0, ThumbHeight: t?.Height ?? 0,
      ThumbFormat: thumb ? imageFormatName(thumb.ImageFormat) : '', ThumbDownloadFlag: DOWNLOAD_FROM_URL,
    },
  };
}

function imageFormatName(format: number | undefined): string {
  switch (format) {
    case 1: return 'jpg';
    case 2: return 'gif';
    case 3: return 'png';
    case 4: return 'bmp';
    default: return '';
  }
}
